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
