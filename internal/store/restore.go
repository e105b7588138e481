package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/event"
)

// LatestBySource returns each source's latest event time in Unix ms among
// the events with a stream sequence up to maxSeq (the acknowledged ones).
// With keep set, only the events of the areas it keeps count: a
// partitioned iocd restores its own areas.
func (s *Store) LatestBySource(ctx context.Context, maxSeq uint64, keep func(area string) bool) (map[string]int64, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT source, area, max(toInt64(toUInt32(time)) * 1000 + time_ms) AS latest FROM events WHERE stream_seq <= %d GROUP BY source, area", maxSeq))
	if err != nil {
		return nil, fmt.Errorf("store: latest event time by source: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var src, area string
		var latest int64
		if err := rows.Scan(&src, &area, &latest); err != nil {
			return nil, fmt.Errorf("store: latest event time by source: %w", err)
		}
		if keep != nil && !keep(area) {
			continue
		}
		if prev, ok := out[src]; !ok || latest > prev {
			out[src] = latest
		}
	}
	return out, rows.Err()
}

// ReadEvents streams back the stored events of each source from its own
// start time (Unix ms) on, with the latest time recorded when each was
// counted, skipping events with a stream sequence above maxSeq. Sources are
// grouped by start hour so that a few range scans on the (source, time) key
// cover them all.
func (s *Store) ReadEvents(ctx context.Context, fromMs map[string]int64, maxSeq uint64, fn func(ev *event.Event, latestMs int64)) (int, error) {
	groups := map[int64][]string{}
	for src, from := range fromMs {
		hour := from / 3_600_000 * 3600
		groups[hour] = append(groups[hour], src)
	}
	hours := make([]int64, 0, len(groups))
	for h := range groups {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	total := 0
	for _, hour := range hours {
		sources := groups[hour]
		for len(sources) > 0 {
			chunk := sources[:min(len(sources), 1000)]
			sources = sources[len(chunk):]
			n, err := s.readChunk(ctx, chunk, hour, fromMs, maxSeq, fn)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (s *Store) readChunk(ctx context.Context, sources []string, fromSec int64, fromMs map[string]int64, maxSeq uint64, fn func(*event.Event, int64)) (int, error) {
	// The IN list is written out: binding a slice sends an Array, which
	// 18.16 refuses in IN.
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT id, kind, type, source, area, time, time_ms, metric_names, metric_values, source_latest_ms
FROM events WHERE source IN (%s) AND time >= toDateTime(%d) AND stream_seq <= %d`, quoteList(sources), fromSec, maxSeq))
	if err != nil {
		return 0, fmt.Errorf("store: read events for restore: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ev event.Event
		var t time.Time
		var ms uint16
		var latest int64
		if err := rows.Scan(&ev.ID, &ev.Kind, &ev.Type, &ev.Source, &ev.Area, &t, &ms, &ev.MetricNames, &ev.MetricValues, &latest); err != nil {
			return n, fmt.Errorf("store: read events for restore: %w", err)
		}
		ev.TimeMs = t.Unix()*1000 + int64(ms)
		if ev.TimeMs < fromMs[ev.Source] {
			continue
		}
		fn(&ev, latest)
		n++
	}
	return n, rows.Err()
}

// quoteList renders strings as a list of ClickHouse string literals.
func quoteList(items []string) string {
	var b strings.Builder
	for i, s := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		for _, r := range s {
			if r == '\\' || r == '\'' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('\'')
	}
	return b.String()
}
