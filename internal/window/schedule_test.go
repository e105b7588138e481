package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
)

// TestRowsDoNotDependOnCollectTiming: one random stream (several sources,
// two window sizes, late events, duplicates, silences long enough to go
// idle) is collected on different schedules, early or not. What a
// consumer of the rows ends with, the last row written per window, must
// be the same on every schedule and must be what an early collect after
// every event writes: a Collect that skips a source must never skip a row.
func TestRowsDoNotDependOnCollectTiming(t *testing.T) {
	c := cfg()
	c.Sizes = []time.Duration{time.Minute, 5 * time.Minute}
	type step struct {
		ev    *event.Event
		nowMs int64
	}
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		var steps []step
		nowMs := base
		latest := map[string]int64{}
		for i := 0; i < 600; i++ {
			src := fmt.Sprintf("s%d", rng.IntN(4))
			t0 := latest[src] + int64(rng.IntN(20_000))
			if rng.IntN(10) == 0 {
				t0 -= int64(rng.IntN(int(10 * minute))) // late, sometimes beyond the lateness
			}
			latest[src] = max(latest[src], t0)
			id := fmt.Sprintf("e%d", i)
			if i > 0 && rng.IntN(15) == 0 {
				id = fmt.Sprintf("e%d", rng.IntN(i)) // a duplicate, maybe of another source
			}
			metric := []string{"height", "flow"}[rng.IntN(2)]
			e := &event.Event{ID: id, Kind: "environment", Type: "water_level", Source: src, Area: "kim-long",
				TimeMs: base + t0, MetricNames: []string{metric}, MetricValues: []float64{float64(rng.IntN(100))}}
			nowMs += int64(rng.IntN(2000))
			if rng.IntN(50) == 0 {
				nowMs += 2 * minute // every source goes idle
			}
			steps = append(steps, step{e, nowMs})
		}
		// A schedule says, after event i, whether to collect and which
		// shard of early rows to take (shards 0: none; 1: all).
		run := func(collect func(i int) (do bool, shard, shards int)) map[string]Row {
			set, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			last := map[string]Row{}
			keep := func(rows []Row) {
				for _, r := range rows {
					last[fmt.Sprintf("%s/%s/%d/%d", r.Source, r.Metric, r.SizeMs, r.StartMs)] = r
				}
			}
			for i, s := range steps {
				set.Add(s.ev, s.nowMs)
				checkOpen(t, set)
				if do, shard, shards := collect(i); do {
					keep(set.CollectShard(nil, s.nowMs, shard, shards))
				}
				set.TakeUpdates(nil)
			}
			// Everything idle, so final: one collect, early or not, writes
			// every row still owed, and nothing is left for another.
			end := steps[len(steps)-1].nowMs + 10*minute
			keep(set.Collect(nil, end, false))
			if rows := set.Collect(nil, end, true); len(rows) != 0 {
				t.Fatalf("seed %d: %d rows left after every window became final and was collected", seed, len(rows))
			}
			return last
		}
		want := run(func(int) (bool, int, int) { return true, 0, 1 })
		r := rand.New(rand.NewPCG(seed, 9))
		turn := 0
		schedules := map[string]func(int) (bool, int, int){
			"every event, not early": func(int) (bool, int, int) { return true, 0, 0 },
			"random": func(int) (bool, int, int) {
				if r.IntN(3) == 0 {
					return r.IntN(5) == 0, 0, 1
				}
				return r.IntN(5) == 0, 0, 0
			},
			"rarely, never early": func(i int) (bool, int, int) { return i%97 == 0, 0, 0 },
			"early by shards in turn": func(i int) (bool, int, int) {
				turn++
				return r.IntN(4) == 0, turn % 3, 3
			},
		}
		for name, sched := range schedules {
			got := run(sched)
			for k, w := range want {
				if g, ok := got[k]; !ok || g != w {
					t.Fatalf("seed %d, %s: window %s ends as %+v, want %+v", seed, name, k, g, w)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("seed %d, %s: %d windows written, want %d", seed, name, len(got), len(want))
			}
		}
	}
}

// TestShardsInTurnWriteEveryOpenWindow: early collects of each shard in
// turn write every changed open window once, as one early Collect does.
func TestShardsInTurnWriteEveryOpenWindow(t *testing.T) {
	for _, shards := range []int{1, 2, 5, 7} {
		set, err := New(cfg())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			e := &event.Event{ID: fmt.Sprint(i), Kind: "environment", Type: "water_level", Source: fmt.Sprintf("s%d", i%20),
				Area: "kim-long", TimeMs: base + int64(i)*100, MetricNames: []string{"height"}, MetricValues: []float64{1}}
			set.Add(e, base)
		}
		seen := map[string]int{}
		for shard := range shards {
			for _, r := range set.CollectShard(nil, base, shard, shards) {
				if r.Final {
					t.Fatalf("%d shards: a final row, with no window final yet", shards)
				}
				seen[r.Source+"/"+r.Metric]++
			}
		}
		if len(seen) != 40 { // 20 sources × (height, events)
			t.Fatalf("%d shards in turn wrote %d open windows, want 40", shards, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%d shards: %s written %d times", shards, k, n)
			}
		}
		if rows := set.Collect(nil, base, true); len(rows) != 0 {
			t.Fatalf("%d shards: %d open windows left unwritten", shards, len(rows))
		}
	}
}

// checkOpen fails unless every source's open list holds exactly its slots
// that are not final, the Set's count of open windows is their sum, the
// slots are in start order, and only final slots already written are
// frozen.
func checkOpen(t *testing.T, set *Set) {
	t.Helper()
	total := 0
	for name, src := range set.sources {
		inList := map[*slot]bool{}
		for _, o := range src.open {
			if sl, _ := src.slot(o.key.sizeIdx, o.key.startMs); o.sl.final || sl != o.sl || inList[o.sl] {
				t.Fatalf("source %s: open list holds %+v (final %v), stale or twice", name, o.key, o.sl.final)
			}
			inList[o.sl] = true
		}
		for i, l := range src.slots {
			for j, sl := range l {
				if j > 0 && l[j-1].startMs >= sl.startMs {
					t.Fatalf("source %s: slots of size %d out of order at %d", name, i, j)
				}
				if !sl.final && !inList[sl] {
					t.Fatalf("source %s: open slot %d/%d is missing from the open list", name, i, sl.startMs)
				}
				if sl.frozen() && (!sl.final || sl.dirty || sl.aggs != nil) {
					t.Fatalf("source %s: slot %d/%d frozen while final %v, dirty %v", name, i, sl.startMs, sl.final, sl.dirty)
				}
			}
		}
		total += len(src.open)
	}
	if total != set.openWindows {
		t.Fatalf("%d slots in open lists, openWindows %d", total, set.openWindows)
	}
}
