package window

import (
	"math/rand/v2"
	"testing"
)

// TestIDSetMatchesAMap: random adds, lookups and prunes, across the
// switch from a sorted slice to a map, agree with a map of every id.
func TestIDSetMatchesAMap(t *testing.T) {
	const size = 60_000
	for _, perBucket := range []int{3, smallBucket, 5 * smallBucket} {
		rng := rand.New(rand.NewPCG(uint64(perBucket), 7))
		var s idSet
		model := map[int64]map[uint64]bool{}
		horizon := int64(-1 << 62)
		for step := 0; step < 20_000; step++ {
			start := int64(rng.IntN(40)) * size
			h := uint64(rng.IntN(perBucket * 2)) // repeats are duplicates
			if start+size <= horizon {
				continue // the Set never asks about buckets behind the horizon
			}
			want := model[start][h]
			if got := s.has(start, h); got != want {
				t.Fatalf("%d per bucket, step %d: has(%d, %d) = %v, want %v", perBucket, step, start, h, got, want)
			}
			isNew := model[start] == nil
			if model[start] == nil {
				model[start] = map[uint64]bool{}
			}
			model[start][h] = true
			if got := s.add(start, h); got != isNew {
				t.Fatalf("step %d: add reported new bucket %v, want %v", step, got, isNew)
			}
			if step%2000 == 1999 {
				horizon = int64(step/2000) * size
				s.pruneBefore(horizon, size)
				for b := range model {
					if b+size <= horizon {
						delete(model, b)
					}
				}
				if s.len() != len(model) {
					t.Fatalf("after pruning at %d: %d buckets, want %d", horizon, s.len(), len(model))
				}
				if end, ok := s.oldestEnd(size); ok && end <= horizon {
					t.Fatalf("oldest bucket ends at %d, behind the horizon %d", end, horizon)
				}
			}
		}
		for i := 1; i < s.len(); i++ {
			if s.buckets[i-1].start >= s.buckets[i].start {
				t.Fatalf("buckets out of order at %d", i)
			}
		}
	}
}
