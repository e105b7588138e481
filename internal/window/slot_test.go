package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/iocstream/iocstream/internal/event"
)

// TestFirstLastMatchBruteForce: many events in one window, with equal
// times (ties broken by id), out of order, and of two types with metrics
// they do not all carry, so that aggregates' first and last events differ
// and the slot's table of ids is compacted many times. Half the events come
// after the window was final and written (frozen), as corrections. Every
// aggregate must equal one computed from the events directly.
func TestFirstLastMatchBruteForce(t *testing.T) {
	type agg struct {
		count                      uint64
		sum, min, max, first, last float64
		firstMs, lastMs            int64
		firstID, lastID            string
	}
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		set, err := New(cfg())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]*agg{}
		add := func(key string, v float64, tMs int64, id string) {
			a := want[key]
			if a == nil {
				a = &agg{min: math.Inf(1), max: math.Inf(-1)}
				want[key] = a
			}
			if a.count == 0 || tMs < a.firstMs || tMs == a.firstMs && id < a.firstID {
				a.first, a.firstMs, a.firstID = v, tMs, id
			}
			if a.count == 0 || tMs > a.lastMs || tMs == a.lastMs && id > a.lastID {
				a.last, a.lastMs, a.lastID = v, tMs, id
			}
			a.count++
			a.sum += v
			a.min, a.max = math.Min(a.min, v), math.Max(a.max, v)
		}
		for i := 0; i < 300; i++ {
			typ := []string{"water_level", "rainfall"}[rng.IntN(2)]
			tMs := int64(rng.IntN(6)) * 10_000 // six distinct times: many ties
			id := fmt.Sprintf("%c%d", 'a'+rng.IntN(26), i)
			e := &event.Event{ID: id, Kind: "environment", Type: typ, Source: "s", Area: "kim-long", TimeMs: base + tMs}
			for _, m := range []string{"height", "flow", "temp"} {
				if rng.IntN(3) > 0 {
					v := float64(rng.IntN(1000))
					if rng.IntN(2) == 0 {
						v /= 8 // fractional values are packed as their bits
					}
					e.MetricNames, e.MetricValues = append(e.MetricNames, m), append(e.MetricValues, v)
					add(typ+"/"+m, v, base+tMs, id)
				}
			}
			add(typ+"/"+EventsMetric, 1, base+tMs, id)
			if d, _ := set.Add(e, base); d != Accepted && d != Corrected {
				t.Fatalf("seed %d: event %d %v", seed, i, d)
			}
			if i == 150 {
				// Final now (the idle timeout): later events are corrections.
				set.Collect(nil, base+2*minute, false)
			}
		}
		rows := set.Collect(nil, base+10*minute, true)
		set.TakeUpdates(nil)
		if len(rows) != len(want) {
			t.Fatalf("seed %d: %d rows, want %d", seed, len(rows), len(want))
		}
		for _, r := range rows {
			w := want[r.Type+"/"+r.Metric]
			if w == nil || r.Count != w.count || r.Sum != w.sum || r.Min != w.min || r.Max != w.max ||
				r.First != w.first || r.Last != w.last {
				t.Fatalf("seed %d: %s/%s = %+v, want %+v", seed, r.Type, r.Metric, r, w)
			}
		}
	}
}

// TestKeyTableStaysBounded: a source that names a new area in every event
// (a misbehaving publisher) for six hours of event time. The key table is
// rebuilt as the horizon forgets the windows, so it stays near what the
// horizon holds, and every row still carries its own event's area.
func TestKeyTableStaysBounded(t *testing.T) {
	set, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	areas := map[int64]map[string]bool{} // window start → areas in it
	for i := int64(0); i < 6*3600/2; i++ {
		tMs := base + i*2000
		area := fmt.Sprintf("a%d", i)
		e := &event.Event{ID: fmt.Sprint(i), Kind: "environment", Type: "water_level", Source: "s", Area: area,
			TimeMs: tMs, MetricNames: []string{"height"}, MetricValues: []float64{1}}
		set.Add(e, base)
		start := Start(tMs, minute)
		if areas[start] == nil {
			areas[start] = map[string]bool{}
		}
		areas[start][area] = true
		if i%100 == 0 {
			for _, r := range set.Collect(nil, base, false) {
				if !areas[r.StartMs][r.Area] {
					t.Fatalf("row of window %d carries area %s, which no event of it had", r.StartMs, r.Area)
				}
			}
			set.TakeUpdates(nil)
			if n := len(set.keys.keys); n > 2*keysFloor+2*3600 {
				t.Fatalf("after %d events the key table holds %d keys", i, n)
			}
		}
	}
	if set.keys.live == 0 {
		t.Fatal("the key table was never rebuilt: the test proves nothing")
	}
}

func TestSlotListFind(t *testing.T) {
	l := slotList{{startMs: 10}, {startMs: 20}, {startMs: 40}}
	for _, c := range []struct {
		start int64
		at    int
		found bool
	}{
		{5, 0, false}, {10, 0, true}, {15, 1, false}, {20, 1, true}, {30, 2, false}, {40, 2, true}, {50, 3, false},
	} {
		if at, found := l.find(c.start); at != c.at || found != c.found {
			t.Errorf("find(%d) = %d, %v; want %d, %v", c.start, at, found, c.at, c.found)
		}
	}
	if at, found := (slotList{}).find(7); at != 0 || found {
		t.Errorf("find in an empty list = %d, %v", at, found)
	}
}
