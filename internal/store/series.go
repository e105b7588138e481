package store

import (
	"context"
	"fmt"
	"math"
	"time"
)

// SeriesQuery selects one metric's windows for a chart (the console's
// alert detail). Empty Type, Area or Source select every value.
type SeriesQuery struct {
	Kind, Type, Metric, Area, Source string
	// Agg is how the panes of several sources (and each pane's own
	// aggregate) are read: max, min, sum, count, avg or last.
	Agg      string
	From, To time.Time
}

// Point is one pane of a series.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// MaxSeriesPoints bounds a series answer (a week of minutes is 10 080).
const MaxSeriesPoints = 12_000

// seriesExpr reads a pane's value for an aggregate; the columns are those
// of window_agg. rate_per_hour is charted as the level it measures.
var seriesExpr = map[string]string{
	"max": "max(max)", "min": "min(min)", "sum": "sum(sum)", "count": "toFloat64(sum(count))",
	"avg": "sum(sum) / sum(count)", "last": "avg(last)", "rate_per_hour": "avg(last)",
}

// Series returns the metric's value per pane of the smallest window size
// stored for it, oldest first, newest version of each window (FINAL). The
// query is parameterised; only the aggregate expression is chosen from a
// fixed table.
func (s *Store) Series(ctx context.Context, q SeriesQuery) ([]Point, error) {
	expr, ok := seriesExpr[q.Agg]
	if !ok {
		expr = seriesExpr["avg"]
	}
	where := "kind = ? AND metric = ? AND (? = '' OR type = ?) AND (? = '' OR area = ?) AND (? = '' OR source = ?) " +
		"AND window_start >= toDateTime(?, 'UTC') AND window_start < toDateTime(?, 'UTC')"
	args := []any{q.Kind, q.Metric, q.Type, q.Type, q.Area, q.Area, q.Source, q.Source, q.From.Unix(), q.To.Unix()}
	var size uint32
	if err := s.conn.QueryRow(ctx, "SELECT min(window_size_s) FROM window_agg WHERE "+where, args...).Scan(&size); err != nil {
		return nil, fmt.Errorf("store: series window size: %w", err)
	}
	if size == 0 {
		return []Point{}, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT toUnixTimestamp(window_start) AS t, toFloat64("+expr+") AS v FROM window_agg FINAL "+
		"WHERE window_size_s = ? AND "+where+" GROUP BY t ORDER BY t LIMIT ?", append(append([]any{size}, args...), MaxSeriesPoints)...)
	if err != nil {
		return nil, fmt.Errorf("store: read series: %w", err)
	}
	defer rows.Close()
	out := []Point{}
	for rows.Next() {
		var t uint32
		var v float64
		if err := rows.Scan(&t, &v); err != nil {
			return nil, fmt.Errorf("store: read series: %w", err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue // a pane with no count has no average
		}
		out = append(out, Point{T: time.Unix(int64(t), 0).UTC(), V: v})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read series: %w", err)
	}
	return out, nil
}
