package window

import (
	"cmp"
	"slices"
)

// smallBucket is how many ids a dedup bucket keeps in a sorted slice
// before it turns into a map. A camera's minute holds about 12 ids: a
// slice of 16 hashes is 128 bytes where a map of 12 is about 300, and a
// binary search of 64 is as fast as a map lookup.
const smallBucket = 64

// idSet is a source's dedup set: the 64-bit hashes of the ids it counted,
// in buckets of the smallest window size by event time, so that a bucket
// leaves with its windows when the horizon passes it. Buckets are kept in
// start order; events mostly land in the newest one.
type idSet struct {
	buckets []idBucket
}

type idBucket struct {
	start int64
	small []uint64            // sorted, while the bucket holds ≤ smallBucket ids
	big   map[uint64]struct{} // once it holds more
}

// find returns the index of the bucket starting at start, or where it
// would go.
func (s *idSet) find(start int64) (int, bool) {
	if n := len(s.buckets); n > 0 && s.buckets[n-1].start == start {
		return n - 1, true
	}
	return slices.BinarySearchFunc(s.buckets, start, func(b idBucket, t int64) int { return cmp.Compare(b.start, t) })
}

// has reports whether h was added to the bucket starting at start.
func (s *idSet) has(start int64, h uint64) bool {
	i, ok := s.find(start)
	if !ok {
		return false
	}
	b := &s.buckets[i]
	if b.big != nil {
		_, seen := b.big[h]
		return seen
	}
	_, seen := slices.BinarySearch(b.small, h)
	return seen
}

// add puts h in the bucket starting at start. It reports whether the
// bucket is new.
func (s *idSet) add(start int64, h uint64) bool {
	i, ok := s.find(start)
	if !ok {
		// Sized like the newest bucket: a source sends at a steady rate,
		// and growing by doubling would leave a quarter of it unused.
		var small []uint64
		if n := len(s.buckets); n > 0 && s.buckets[n-1].big == nil {
			small = make([]uint64, 0, len(s.buckets[n-1].small))
		}
		s.buckets = slices.Insert(s.buckets, i, idBucket{start: start, small: small})
	}
	b := &s.buckets[i]
	if b.big != nil {
		b.big[h] = struct{}{}
		return !ok
	}
	j, seen := slices.BinarySearch(b.small, h)
	if seen {
		return !ok
	}
	if len(b.small) < smallBucket {
		b.small = slices.Insert(b.small, j, h)
		return !ok
	}
	b.big = make(map[uint64]struct{}, 2*smallBucket)
	for _, x := range b.small {
		b.big[x] = struct{}{}
	}
	b.big[h] = struct{}{}
	b.small = nil
	return !ok
}

// pruneBefore forgets the buckets ending at or before horizon (a bucket
// starting at start ends at start+sizeMs).
func (s *idSet) pruneBefore(horizon, sizeMs int64) {
	n := 0
	for n < len(s.buckets) && s.buckets[n].start+sizeMs <= horizon {
		n++
	}
	if n > 0 {
		s.buckets = slices.Delete(s.buckets, 0, n)
	}
}

// oldestEnd is the end of the oldest bucket, and false when there is none.
func (s *idSet) oldestEnd(sizeMs int64) (int64, bool) {
	if len(s.buckets) == 0 {
		return 0, false
	}
	return s.buckets[0].start + sizeMs, true
}

// len is the number of buckets held.
func (s *idSet) len() int { return len(s.buckets) }
