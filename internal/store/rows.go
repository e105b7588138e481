package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// EventRows is a column-oriented batch of events rows: appending an event
// copies no strings and the insert hands whole columns to the driver.
type EventRows struct {
	id, kind, typ, source, area []string
	timeSec                     []int64
	timeMs                      []uint16
	receivedSec                 []int64
	lat, lon                    []*float64
	coords                      []float64 // backing store for lat/lon pointers
	metricNames                 [][]string
	metricValues                [][]float64
	attrKeys, attrValues        [][]string
	latestMs                    []int64
	seq                         []uint64
	// Arenas for the per-row arrays: one growing slice per batch instead of
	// four small allocations per event.
	names, attrKeyArena, attrValueArena []string
	values                              []float64
}

// Len returns the number of rows.
func (r *EventRows) Len() int { return len(r.id) }

// Reset empties the batch and keeps its memory.
func (r *EventRows) Reset() {
	r.id, r.kind, r.typ, r.source, r.area = r.id[:0], r.kind[:0], r.typ[:0], r.source[:0], r.area[:0]
	r.timeSec, r.timeMs, r.receivedSec = r.timeSec[:0], r.timeMs[:0], r.receivedSec[:0]
	r.lat, r.lon, r.coords = r.lat[:0], r.lon[:0], r.coords[:0]
	r.metricNames, r.metricValues = r.metricNames[:0], r.metricValues[:0]
	r.attrKeys, r.attrValues = r.attrKeys[:0], r.attrValues[:0]
	r.latestMs, r.seq = r.latestMs[:0], r.seq[:0]
	r.names, r.values, r.attrKeyArena, r.attrValueArena = r.names[:0], r.values[:0], r.attrKeyArena[:0], r.attrValueArena[:0]
}

// Append adds one accepted event; it copies the event's slices, so the
// caller may reuse the Event. latestMs is the source's latest event time
// before this event (see window.Set.Add); seq its stream sequence.
func (r *EventRows) Append(ev *event.Event, receivedSec, latestMs int64, seq uint64) {
	r.id = append(r.id, ev.ID)
	r.kind = append(r.kind, ev.Kind)
	r.typ = append(r.typ, ev.Type)
	r.source = append(r.source, ev.Source)
	r.area = append(r.area, ev.Area)
	sec, ms := ev.TimeMs/1000, ev.TimeMs%1000
	if ms < 0 {
		sec, ms = sec-1, ms+1000
	}
	r.timeSec = append(r.timeSec, sec)
	r.timeMs = append(r.timeMs, uint16(ms))
	r.receivedSec = append(r.receivedSec, receivedSec)
	if ev.HasLocation {
		// Pointers are taken at insert time: coords may still grow.
		r.coords = append(r.coords, ev.Lat, ev.Lon)
		r.lat = append(r.lat, &r.coords[0]) // placeholder, fixed in columns()
		r.lon = append(r.lon, &r.coords[0])
	} else {
		r.lat = append(r.lat, nil)
		r.lon = append(r.lon, nil)
	}
	var names, keys, vals []string
	var values []float64
	r.names, names = carve(r.names, ev.MetricNames)
	r.values, values = carve(r.values, ev.MetricValues)
	r.attrKeyArena, keys = carve(r.attrKeyArena, ev.AttrKeys)
	r.attrValueArena, vals = carve(r.attrValueArena, ev.AttrValues)
	r.metricNames = append(r.metricNames, names)
	r.metricValues = append(r.metricValues, values)
	r.attrKeys = append(r.attrKeys, keys)
	r.attrValues = append(r.attrValues, vals)
	r.latestMs = append(r.latestMs, latestMs)
	r.seq = append(r.seq, seq)
}

// carve copies src to the end of arena and returns the copy with a capped
// capacity. When arena grows, earlier copies keep the old array alive.
func carve[T any](arena, src []T) ([]T, []T) {
	start := len(arena)
	arena = append(arena, src...)
	return arena, arena[start:len(arena):len(arena)]
}

// fixCoords points lat/lon at their final place in coords.
func (r *EventRows) fixCoords() {
	j := 0
	for i := range r.lat {
		if r.lat[i] != nil {
			r.lat[i], r.lon[i] = &r.coords[j], &r.coords[j+1]
			j += 2
		}
	}
}

const eventsInsert = "INSERT INTO events (id, kind, type, source, area, time, time_ms, received_at, lat, lon, " +
	"metric_names, metric_values, attr_keys, attr_values, source_latest_ms, stream_seq)"

// InsertEvents writes the batch in one insert.
func (s *Store) InsertEvents(ctx context.Context, r *EventRows) error {
	if r.Len() == 0 {
		return nil
	}
	r.fixCoords()
	return s.insertColumns(ctx, "events", eventsInsert, []any{
		r.id, r.kind, r.typ, r.source, r.area, r.timeSec, r.timeMs, r.receivedSec, r.lat, r.lon,
		stringArrays(r.metricNames), floatArrays(r.metricValues), stringArrays(r.attrKeys), stringArrays(r.attrValues),
		r.latestMs, r.seq,
	})
}

// InsertTooLate writes the raw rows of events dropped as too late (older
// than the correction horizon), except those whose id is stored already.
// A dropped event may be a late copy of one counted long ago, whose id
// the dedup set has forgotten: its row would replace the counted one
// under FINAL (the table keeps the last row inserted), and a restart would
// then rebuild the windows without it.
func (s *Store) InsertTooLate(ctx context.Context, r *EventRows) error {
	if r.Len() == 0 {
		return nil
	}
	stored, err := s.storedIDs(ctx, r)
	if err != nil {
		return err
	}
	fresh := &EventRows{}
	for i := range r.id {
		if !stored[r.id[i]] {
			fresh.copyRow(r, i)
		}
	}
	return s.InsertEvents(ctx, fresh)
}

// storedIDs returns which of the rows' ids the events table holds, asking
// by source, time range and id so that the primary key narrows the read.
func (s *Store) storedIDs(ctx context.Context, r *EventRows) (map[string]bool, error) {
	stored := map[string]bool{}
	const chunk = 500 // keeps the query well under max_query_size
	for from := 0; from < r.Len(); from += chunk {
		to := min(from+chunk, r.Len())
		sources := map[string]bool{}
		var args []any
		lo, hi := r.timeSec[from], r.timeSec[from]
		for i := from; i < to; i++ {
			sources[r.source[i]] = true
			lo, hi = min(lo, r.timeSec[i]), max(hi, r.timeSec[i])
		}
		for src := range sources {
			args = append(args, src)
		}
		nSources := len(args)
		args = append(args, time.Unix(lo, 0).UTC(), time.Unix(hi, 0).UTC())
		for i := from; i < to; i++ {
			args = append(args, r.id[i])
		}
		q := "SELECT id FROM events WHERE source IN (" + placeholders(nSources) + ") AND time >= ? AND time <= ? AND id IN (" +
			placeholders(to-from) + ")"
		rows, err := s.conn.Query(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("store: look up stored ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: look up stored ids: %w", err)
			}
			stored[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: look up stored ids: %w", err)
		}
	}
	return stored, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// copyRow appends row i of src.
func (r *EventRows) copyRow(src *EventRows, i int) {
	r.id = append(r.id, src.id[i])
	r.kind = append(r.kind, src.kind[i])
	r.typ = append(r.typ, src.typ[i])
	r.source = append(r.source, src.source[i])
	r.area = append(r.area, src.area[i])
	r.timeSec = append(r.timeSec, src.timeSec[i])
	r.timeMs = append(r.timeMs, src.timeMs[i])
	r.receivedSec = append(r.receivedSec, src.receivedSec[i])
	if src.lat[i] != nil {
		r.coords = append(r.coords, *src.lat[i], *src.lon[i])
		r.lat = append(r.lat, &r.coords[0]) // fixed in InsertEvents
		r.lon = append(r.lon, &r.coords[0])
	} else {
		r.lat = append(r.lat, nil)
		r.lon = append(r.lon, nil)
	}
	r.metricNames = append(r.metricNames, src.metricNames[i])
	r.metricValues = append(r.metricValues, src.metricValues[i])
	r.attrKeys = append(r.attrKeys, src.attrKeys[i])
	r.attrValues = append(r.attrValues, src.attrValues[i])
	r.latestMs = append(r.latestMs, src.latestMs[i])
	r.seq = append(r.seq, src.seq[i])
}

// stringArrays and floatArrays mark array columns to be appended row by row:
// the driver's whole-column Append of [][]T goes through reflection for every
// element, its AppendRow of []T does not (several times cheaper).
type (
	stringArrays [][]string
	floatArrays  [][]float64
)

// appendArrays appends each row as a slice of pointers into it: the
// driver appends a []T row's elements as interface values, which boxes
// (allocates) every string and float, while a pointer boxes for free.
// ptrs is scratch reused across rows and inserts; the driver copies the
// values at once.
func appendArrays[T any](c driver.BatchColumn, rows [][]T, ptrs *[]*T) error {
	p := *ptrs
	defer func() {
		clear(p) // the scratch keeps no batch alive
		*ptrs = p[:0]
	}()
	for _, row := range rows {
		p = p[:0]
		for k := range row {
			p = append(p, &row[k])
		}
		if err := c.AppendRow(p); err != nil {
			return err
		}
	}
	return nil
}

const windowsInsert = "INSERT INTO window_agg (window_start, window_size_s, kind, type, metric, area, source, " +
	"count, sum, min, max, first, last, final, version, updated_at)"

// InsertWindows writes window rows with a version above every earlier one.
func (s *Store) InsertWindows(ctx context.Context, rows []window.Row) error {
	if len(rows) == 0 {
		return nil
	}
	c, _ := s.windowCols.Get().(*windowColumns)
	if c == nil {
		c = &windowColumns{}
	}
	defer s.windowCols.Put(c)
	c.reset(len(rows))
	now := time.Now().Unix()
	v := s.version.next()
	for i, r := range rows {
		c.start[i], c.size[i] = r.StartMs/1000, uint32(r.SizeMs/1000)
		c.kind[i], c.typ[i], c.metric[i], c.area[i], c.source[i] = r.Kind, r.Type, r.Metric, r.Area, r.Source
		c.count[i], c.sum[i], c.min[i], c.max[i], c.first[i], c.last[i] = r.Count, r.Sum, r.Min, r.Max, r.First, r.Last
		c.final[i] = 0
		if r.Final {
			c.final[i] = 1
		}
		c.version[i], c.updated[i] = v, now
	}
	err := s.insertColumns(ctx, "window_agg", windowsInsert, []any{
		c.start, c.size, c.kind, c.typ, c.metric, c.area, c.source, c.count, c.sum, c.min, c.max, c.first, c.last,
		c.final, c.version, c.updated,
	})
	clear(c.kind[:cap(c.kind)]) // keep no strings alive between inserts
	clear(c.typ[:cap(c.typ)])
	clear(c.metric[:cap(c.metric)])
	clear(c.area[:cap(c.area)])
	clear(c.source[:cap(c.source)])
	return err
}

// windowColumns are the columns of a window_agg insert, kept between
// inserts: a city writes a hundred thousand rows every few seconds.
type windowColumns struct {
	start, updated                  []int64
	size                            []uint32
	kind, typ, metric, area, source []string
	count, version                  []uint64
	sum, min, max, first, last      []float64
	final                           []uint8
}

func (c *windowColumns) reset(n int) {
	c.start, c.updated = resize(c.start, n), resize(c.updated, n)
	c.size = resize(c.size, n)
	c.kind, c.typ, c.metric, c.area, c.source = resize(c.kind, n), resize(c.typ, n), resize(c.metric, n), resize(c.area, n), resize(c.source, n)
	c.count, c.version = resize(c.count, n), resize(c.version, n)
	c.sum, c.min, c.max, c.first, c.last = resize(c.sum, n), resize(c.min, n), resize(c.max, n), resize(c.first, n), resize(c.last, n)
	c.final = resize(c.final, n)
}

// resize returns s with length n, reallocated only when it is too small.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Rejected is one rejected message.
type Rejected struct {
	ReceivedSec int64
	Subject     string
	StreamSeq   uint64
	Reason      string
	Detail      string
	Payload     []byte
}

const rejectedInsert = "INSERT INTO rejected (received_at, subject, stream_seq, reason, detail, payload)"

// InsertRejected writes rejected messages.
func (s *Store) InsertRejected(ctx context.Context, rows []Rejected) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	received, subject, seq, reason, detail, payload := make([]int64, n), make([]string, n), make([]uint64, n),
		make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		received[i], subject[i], seq[i], reason[i], detail[i], payload[i] =
			r.ReceivedSec, r.Subject, r.StreamSeq, r.Reason, r.Detail, string(r.Payload)
	}
	return s.insertColumns(ctx, "rejected", rejectedInsert, []any{received, subject, seq, reason, detail, payload})
}

func (s *Store) insertColumns(ctx context.Context, table, insert string, columns []any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// One batch per table lives across inserts: each Flush is a complete
	// INSERT (WithCloseOnFlush) and the block keeps its column buffers, so
	// a steady stream of batches stops re-growing them from empty.
	batch := s.batches[table]
	if batch == nil {
		var err error
		batch, err = s.conn.PrepareBatch(context.WithoutCancel(ctx), insert, driver.WithCloseOnFlush())
		if err != nil {
			return fmt.Errorf("store: prepare insert into %s: %w", table, err)
		}
		s.batches[table] = batch
	}
	// After any failure the block's state is unknown: start afresh.
	discard := func() {
		_ = batch.Abort()
		delete(s.batches, table)
	}
	for i, col := range columns {
		var err error
		c := batch.Column(i)
		switch rows := col.(type) {
		case stringArrays:
			err = appendArrays(c, rows, &s.strPtrs)
		case floatArrays:
			err = appendArrays(c, rows, &s.floatPtrs)
		default:
			err = c.Append(col)
		}
		if err != nil {
			discard()
			return fmt.Errorf("store: insert into %s, column %d: %w", table, i, err)
		}
	}
	if err := batch.Flush(); err != nil {
		discard()
		return fmt.Errorf("store: insert into %s: %w", table, err)
	}
	return nil
}
