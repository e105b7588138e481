package ingest

import (
	"testing"
	"time"
)

func TestEarlyShards(t *testing.T) {
	for _, c := range []struct {
		early, flush time.Duration
		want         int
	}{
		{5 * time.Second, time.Second, 5},                  // the defaults: one shard a second
		{5*time.Second - time.Millisecond, time.Second, 4}, // rounded down: each source within the interval
		{time.Second, 5 * time.Second, 1},                  // flushes rarer than early rows: all at every seal
		{time.Second, time.Second, 1},
		{time.Minute, time.Second, 10}, // at most 10
		{5 * time.Second, 0, 1},        // no flush interval
	} {
		if got := earlyShards(c.early, c.flush); got != c.want {
			t.Errorf("earlyShards(%s, %s) = %d, want %d", c.early, c.flush, got, c.want)
		}
	}
}

// TestEarlyTurnsReachEveryShard: whatever the seals' cadence (as often as
// a full batch seals, once per flush interval, with jitter and pauses),
// every shard gets its turn within the early interval and one flush
// interval of its last, and a draining seal takes every source.
func TestEarlyTurnsReachEveryShard(t *testing.T) {
	const early, flush = 5 * time.Second, time.Second
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cadences := map[string]func(i int) time.Duration{
		"full batches, 0.75 s": func(int) time.Duration { return 750 * time.Millisecond },
		"every flush":          func(int) time.Duration { return flush },
		"every flush, late":    func(i int) time.Duration { return flush + time.Duration(i%7)*10*time.Millisecond },
		"fast":                 func(int) time.Duration { return 30 * time.Millisecond },
		"uneven": func(i int) time.Duration {
			return []time.Duration{100 * time.Millisecond, 900 * time.Millisecond, flush, 10 * time.Millisecond}[i%4]
		},
	}
	for name, gap := range cadences {
		e := newEarlyTurns(early, flush, start)
		last := map[int]time.Time{}
		now := start
		for i := 0; now.Before(start.Add(2 * time.Minute)); i++ {
			now = now.Add(gap(i))
			shard, shards := e.next(now, false)
			if shards == 0 {
				continue
			}
			if shards != 5 || shard < 0 || shard >= shards {
				t.Fatalf("%s: shard %d of %d", name, shard, shards)
			}
			prev, seen := last[shard]
			if !seen {
				prev = start
			}
			if d := now.Sub(prev); d > early+flush {
				t.Fatalf("%s: shard %d waited %s for its turn", name, shard, d)
			}
			last[shard] = now
		}
		if len(last) != 5 {
			t.Fatalf("%s: %d of 5 shards had a turn", name, len(last))
		}
		if shard, shards := e.next(now, true); shard != 0 || shards != 1 {
			t.Fatalf("%s: draining gives shard %d of %d, want every source's", name, shard, shards)
		}
	}
}
