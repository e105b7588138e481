package window

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
)

const minute = int64(60_000)

// base is a minute boundary, so windows are easy to read in the tests.
var base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()

func cfg() Config {
	return Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: 2 * time.Minute,
		IdleTimeout: time.Minute, CorrectionHorizon: time.Hour}
}

func ev(id, source string, offsetMs int64, height float64) *event.Event {
	return &event.Event{ID: id, Kind: "environment", Type: "water_level", Source: source, Area: "kim-long",
		TimeMs: base + offsetMs, MetricNames: []string{"height"}, MetricValues: []float64{height}}
}

func find(rows []Row, startMs int64, metric string) *Row {
	for i := range rows {
		if rows[i].StartMs == startMs && rows[i].Metric == metric {
			return &rows[i]
		}
	}
	return nil
}

func TestAddDispositions(t *testing.T) {
	type step struct {
		e    *event.Event
		now  int64
		want Disposition
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{ev("a", "s", 0, 1), base, Accepted}, {ev("b", "s", 1000, 2), base, Accepted}}},
		{"duplicate id", []step{{ev("a", "s", 0, 1), base, Accepted}, {ev("a", "s", 0, 1), base, Duplicate}}},
		{"out of order inside lateness", []step{{ev("a", "s", 90_000, 1), base, Accepted}, {ev("b", "s", 10_000, 1), base, Accepted}}},
		// After the watermark passes the first minute and Collect finalises it,
		// a late event inside the horizon corrects it.
		{"late inside horizon", []step{{ev("a", "s", 0, 1), base, Accepted}, {ev("b", "s", 4*minute, 1), base, Accepted},
			{nil, base, 0}, {ev("c", "s", 1000, 5), base, Corrected}}},
		{"late beyond horizon", []step{{ev("a", "s", 0, 1), base, Accepted}, {ev("b", "s", 62*minute, 1), base, Accepted},
			{nil, base, 0}, {ev("c", "s", 1000, 5), base, Dropped}}},
		{"other source's clock does not make events late", []step{{ev("a", "s", 0, 1), base, Accepted},
			{ev("b", "t", 90*minute, 1), base, Accepted}, {nil, base, 0}, {ev("c", "s", 1000, 5), base, Accepted}}},
		{"idle source finalises", []step{{ev("a", "s", 0, 1), base, Accepted}, {nil, base + 2*minute, 0},
			{ev("c", "s", 1000, 5), base + 2*minute, Corrected}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := New(cfg())
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				if st.e == nil {
					set.Collect(nil, st.now, false)
					continue
				}
				if got, _ := set.Add(st.e, st.now); got != st.want {
					t.Fatalf("step %d: got %s, want %s", i, got, st.want)
				}
			}
		})
	}
}

func TestAggregatesAndFirstLast(t *testing.T) {
	set, _ := New(cfg())
	// Same time for b and c: first takes the smaller id, last the larger.
	set.Add(ev("c", "s", 5000, 3), base)
	set.Add(ev("b", "s", 5000, 2), base)
	set.Add(ev("a", "s", 20_000, 7), base)
	set.Add(ev("d", "s", 1000, -1), base)
	rows := set.Collect(nil, base, true)
	r := find(rows, base, "height")
	if r == nil || r.Final {
		t.Fatalf("want an early, non-final row; got %+v", rows)
	}
	if r.Count != 4 || r.Sum != 11 || r.Min != -1 || r.Max != 7 || r.First != -1 || r.Last != 7 {
		t.Fatalf("aggregates %+v", r)
	}
	set2, _ := New(cfg())
	set2.Add(ev("c", "s", 5000, 3), base)
	set2.Add(ev("b", "s", 5000, 2), base)
	r2 := find(set2.Collect(nil, base, true), base, "height")
	if r2.First != 2 || r2.Last != 3 {
		t.Fatalf("tie-break by id: first %v last %v", r2.First, r2.Last)
	}
	ec := find(rows, base, EventsMetric)
	if ec == nil || ec.Count != 4 || ec.Sum != 4 {
		t.Fatalf("events metric %+v", ec)
	}
}

func TestCollectWritesEachChangeOnce(t *testing.T) {
	set, _ := New(cfg())
	set.Add(ev("a", "s", 0, 1), base)
	if rows := set.Collect(nil, base, false); len(rows) != 0 {
		t.Fatalf("open window written without early: %+v", rows)
	}
	if rows := set.Collect(nil, base, true); len(rows) != 2 {
		t.Fatalf("early write: %d rows", len(rows))
	}
	if rows := set.Collect(nil, base, true); len(rows) != 0 {
		t.Fatalf("unchanged window written again: %+v", rows)
	}
	// The watermark passes the end of the first minute: final row once.
	set.Add(ev("b", "s", 3*minute+1, 1), base)
	rows := set.Collect(nil, base, false)
	r := find(rows, base, "height")
	if r == nil || !r.Final || r.Count != 1 {
		t.Fatalf("final row: %+v", rows)
	}
	if st := set.Stats(); st.OpenWindows != 1 || st.Sources != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A correction rewrites it with the new aggregate.
	set.Add(ev("c", "s", 2000, 4), base)
	r = find(set.Collect(nil, base, false), base, "height")
	if r == nil || !r.Final || r.Count != 2 || r.Max != 4 {
		t.Fatalf("corrected row: %+v", r)
	}
}

func TestMultipleSizes(t *testing.T) {
	c := cfg()
	c.Sizes = []time.Duration{5 * time.Minute, time.Minute}
	set, _ := New(c)
	for i := int64(0); i < 10; i++ {
		set.Add(ev(string(rune('a'+i)), "s", i*minute, float64(i)), base)
	}
	rows := set.Collect(nil, base+10*minute, true)
	var fives, ones int
	for _, r := range rows {
		if r.Metric != "height" {
			continue
		}
		switch r.SizeMs {
		case 5 * minute:
			fives++
			if r.Count != 5 {
				t.Errorf("5m window %d count %d", r.StartMs, r.Count)
			}
		case minute:
			ones++
		}
	}
	if fives != 2 || ones != 10 {
		t.Fatalf("got %d 5m rows and %d 1m rows", fives, ones)
	}
}

// TestRestoreMatchesLive replays the same events through Add and through
// Restore (as after a crash) and expects the same final rows.
func TestRestoreMatchesLive(t *testing.T) {
	events := []*event.Event{ev("a", "s", 0, 1), ev("b", "s", 30_000, 2), ev("c", "s", 70*minute, 3),
		ev("d", "s", 1000, 9) /* beyond horizon: dropped */, ev("e", "s", 68*minute, 4), ev("f", "s", 69*minute, 5)}
	live, _ := New(cfg())
	restored, _ := New(cfg())
	for _, e := range events {
		_, before := live.Add(e, base)
		restored.Restore(e, before, base)
	}
	restored.FinishRestore()
	checkOpen(t, restored)
	now := base + 200*minute // everything idle: all final
	norm := func(rows []Row) []Row {
		out := rows[:0]
		for _, r := range rows {
			if r.StartMs+r.SizeMs > base+70*minute-60*minute { // only windows inside the horizon
				out = append(out, r)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].StartMs != out[j].StartMs {
				return out[i].StartMs < out[j].StartMs
			}
			return out[i].Metric < out[j].Metric
		})
		return out
	}
	a := norm(live.Collect(nil, now, true))
	b := norm(restored.Collect(nil, now, true))
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("live %d rows, restored %d rows", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: live %+v restored %+v", i, a[i], b[i])
		}
	}
	if d := restored.Restore(ev("e", "s", 68*minute, 4), math.MinInt64, now); d != Duplicate {
		t.Fatalf("restored dedup set: got %s", d)
	}
}

// TestUpdatesDoNotDependOnBatching: the log of final panes and progress is
// the same whether Collect runs after every event or once at the end, and
// a pane's final content is what it held when the watermark passed it: an
// event after that is a correction, logged after it.
func TestUpdatesDoNotDependOnBatching(t *testing.T) {
	events := []*event.Event{ev("a", "s", 0, 1), ev("b", "s", 30_000, 2), ev("c", "t", 10_000, 7),
		ev("d", "s", 3*minute+5000, 3), // the watermark passes the first minute of s
		ev("e", "s", 20_000, 9),        // a correction of it
		ev("f", "t", 4*minute, 1), ev("g", "s", 5*minute, 4)}
	run := func(collectEvery int) []Update {
		set, _ := New(cfg())
		var log []Update
		for i, e := range events {
			set.Add(e, base)
			if collectEvery > 0 && i%collectEvery == 0 {
				set.Collect(nil, base, i%2 == 0)
			}
			log = set.TakeUpdates(log)
		}
		set.Collect(nil, base, true)
		return set.TakeUpdates(log)
	}
	want := run(0)
	for _, every := range []int{1, 2, 3} {
		got := run(every)
		if len(got) != len(want) {
			t.Fatalf("collect every %d: %d updates, want %d", every, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("collect every %d: update %d is %+v, want %+v", every, i, got[i], want[i])
			}
		}
	}
	var heights []Row
	var progress []int64
	for _, u := range want {
		switch {
		case u.Progress && u.Row.Source == "s":
			progress = append(progress, u.DoneMs)
		case !u.Progress && u.Row.Metric == "height" && u.Row.Source == "s":
			heights = append(heights, u.Row)
		}
	}
	if len(heights) != 2 || heights[0].Count != 2 || heights[0].Max != 2 || heights[1].Count != 3 || heights[1].Max != 9 {
		t.Fatalf("want the final pane (a, b) then its correction (a, b, e); got %+v", heights)
	}
	if len(progress) != 3 || progress[1] != base+minute || progress[2] != base+3*minute {
		t.Fatalf("progress of s: %v", progress)
	}
}

func TestIdleProgress(t *testing.T) {
	set, _ := New(cfg())
	set.Add(ev("a", "s", 0, 1), base)
	set.Collect(nil, base+30_000, false)
	set.TakeUpdates(nil)
	set.Collect(nil, base+minute, false) // idle for the timeout: final, and nothing is expected
	ups := set.TakeUpdates(nil)
	if len(ups) != 3 || ups[0].Row.Metric != "height" || !ups[1].Row.Final || !ups[2].Progress || ups[2].DoneMs != math.MaxInt64 {
		t.Fatalf("idle: %+v", ups)
	}
	set.Add(ev("b", "s", 2*minute, 1), base+2*minute)
	ups = set.TakeUpdates(nil)
	if len(ups) != 1 || !ups[0].Progress || ups[0].DoneMs != base {
		t.Fatalf("speaking again: %+v", ups)
	}
}

// TestStateStaysInsideTheHorizon: a source reporting for three hours,
// collected every minute, holds only the windows and dedup buckets of the
// last hour (the horizon) and a few minutes; a late event inside the
// horizon still lands as a correction, one beyond it is dropped.
func TestStateStaysInsideTheHorizon(t *testing.T) {
	s, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	n := 0
	for off := int64(0); off < 180*minute; off += 10_000 {
		n++
		s.Add(ev(fmt.Sprint("e", n), "wl-1", off, 1), base+off)
		if off%minute == 0 {
			rows = s.Collect(rows[:0], base+off, false)
		}
	}
	src := s.sources["wl-1"]
	if src.slotCount() > 64 || src.ids.len() > 64 {
		t.Fatalf("after 3 h: %d slots and %d dedup buckets held, want about an hour's (60)", src.slotCount(), src.ids.len())
	}
	if len(src.dirtySlots) > 4 {
		t.Errorf("%d slots still marked dirty after a collect", len(src.dirtySlots))
	}
	now := base + 180*minute
	if d, _ := s.Add(ev("late-inside", "wl-1", 150*minute, 5), now); d != Corrected {
		t.Errorf("an event 30 min late: %v, want Corrected", d)
	}
	if d, _ := s.Add(ev("late-beyond", "wl-1", 100*minute, 5), now); d != Dropped {
		t.Errorf("an event 80 min late: %v, want Dropped", d)
	}
	rows = s.Collect(rows[:0], now, false)
	if r := find(rows, base+150*minute, "height"); r == nil || r.Count != 7 || r.Max != 5 {
		t.Errorf("the corrected window: %+v", r)
	}
}
