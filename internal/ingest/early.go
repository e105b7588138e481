package ingest

import "time"

// earlyTurns decides which seals write open windows early, and whose.
// The sources take turns in shards, one shard per due seal, so that each
// source's open windows are written once per early interval: written all
// at once, a city's open windows made one batch many times the size of
// the others, and every batch's buffers stayed that size.
type earlyTurns struct {
	shards int
	every  time.Duration // between two shards' turns
	flush  time.Duration
	last   time.Time // when the last turn was due
	turn   int
}

func newEarlyTurns(early, flush time.Duration, now time.Time) earlyTurns {
	n := earlyShards(early, flush)
	return earlyTurns{shards: n, every: early / time.Duration(n), flush: flush, last: now}
}

// earlyShards is how many shards take turns: one per flush interval of
// the early interval, at most 10.
func earlyShards(early, flush time.Duration) int {
	if flush <= 0 {
		return 1
	}
	return int(min(max(early/flush, 1), 10))
}

// next returns the shard, of shards, whose early rows a seal at now
// writes: shards 0 for none, and every source's (0 of 1) when draining.
func (e *earlyTurns) next(now time.Time, draining bool) (shard, shards int) {
	if draining {
		return 0, 1
	}
	if now.Sub(e.last) < e.every {
		return 0, 0
	}
	// From when it was due, so that seals a little late do not stretch
	// the turns; from now when far behind.
	e.last = e.last.Add(e.every)
	if e.last.Before(now.Add(-e.flush)) {
		e.last = now
	}
	shard = e.turn % e.shards
	e.turn++
	return shard, e.shards
}
