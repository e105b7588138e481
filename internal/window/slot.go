package window

import (
	"cmp"
	"math"
	"slices"
)

type slotKey struct {
	sizeIdx int
	startMs int64
}

// slot is one window span of one source; it holds one aggregate per
// (kind, type, area, metric) seen in it.
type slot struct {
	startMs, endMs int64
	final          bool
	dirty          bool
	aggs           []agg
	// ids are the event ids the aggregates' first and last refer to. All
	// aggregates of one event share its id, so a slot holds a few ids
	// instead of two strings per aggregate, and aggregates hold no
	// pointers: the garbage collector skips them (a city holds millions).
	ids   []string
	index map[uint32]int // built once aggs grows past a linear scan
	// packed holds aggs and ids, which are then nil, while the slot is
	// frozen (see freeze): only a final slot that was written is, and any
	// change thaws it first.
	packed []byte
}

type agg struct {
	count           uint64
	sum, min, max   float64
	first, last     float64
	firstMs, lastMs int64
	key             uint32 // into Set.keys
	firstID, lastID uint32 // into slot.ids
}

const linearScanLimit = 16

func (sl *slot) agg(k uint32) *agg {
	if sl.index != nil {
		if i, ok := sl.index[k]; ok {
			return &sl.aggs[i]
		}
	} else {
		for i := range sl.aggs {
			if sl.aggs[i].key == k {
				return &sl.aggs[i]
			}
		}
	}
	sl.aggs = append(sl.aggs, agg{key: k, min: math.Inf(1), max: math.Inf(-1)})
	if sl.index != nil {
		sl.index[k] = len(sl.aggs) - 1
	} else if len(sl.aggs) > linearScanLimit {
		sl.reindex()
	}
	return &sl.aggs[len(sl.aggs)-1]
}

// reindex builds the index of the aggregates by key, anew.
func (sl *slot) reindex() {
	sl.index = make(map[uint32]int, len(sl.aggs)*2)
	for i := range sl.aggs {
		sl.index[sl.aggs[i].key] = i
	}
}

// idRef returns the index of id in sl.ids, appending it. An event becomes
// the last of its aggregates, so each in-order event appends its id: the
// table is compacted to the ids still referred to once it holds a few more
// than two per aggregate. remap is scratch space, returned for reuse.
func (sl *slot) idRef(id string, remap []int32) (uint32, []int32) {
	if n := len(sl.ids); n > 0 && sl.ids[n-1] == id {
		return uint32(n - 1), remap
	}
	if len(sl.ids) >= 2*len(sl.aggs)+4 {
		remap = sl.compactIDs(remap)
	}
	sl.ids = append(sl.ids, id)
	return uint32(len(sl.ids) - 1), remap
}

// compactIDs keeps the ids an aggregate refers to, in their order, and
// renumbers the references.
func (sl *slot) compactIDs(remap []int32) []int32 {
	remap = slices.Grow(remap[:0], len(sl.ids))[:len(sl.ids)]
	for i := range remap {
		remap[i] = -1
	}
	for i := range sl.aggs {
		remap[sl.aggs[i].firstID], remap[sl.aggs[i].lastID] = 0, 0
	}
	kept := sl.ids[:0]
	for i, id := range sl.ids {
		if remap[i] == 0 {
			remap[i] = int32(len(kept))
			kept = append(kept, id)
		}
	}
	clear(sl.ids[len(kept):])
	sl.ids = kept
	for i := range sl.aggs {
		a := &sl.aggs[i]
		a.firstID, a.lastID = uint32(remap[a.firstID]), uint32(remap[a.lastID])
	}
	return remap
}

// add counts value v of the event id (at sl.ids[ref]) at time tMs in a.
// First and last are the values at the earliest and latest times, ties
// broken by id.
func (sl *slot) add(a *agg, v float64, tMs int64, id string, ref uint32) {
	if a.count == 0 || tMs < a.firstMs || tMs == a.firstMs && id < sl.ids[a.firstID] {
		a.first, a.firstMs, a.firstID = v, tMs, ref
	}
	if a.count == 0 || tMs > a.lastMs || tMs == a.lastMs && id > sl.ids[a.lastID] {
		a.last, a.lastMs, a.lastID = v, tMs, ref
	}
	a.count++
	a.sum += v
	a.min = math.Min(a.min, v)
	a.max = math.Max(a.max, v)
}

// slotList is a source's slots of one size in start order. Events land in
// the newest, so it is checked first; a late event's slot is found by a
// binary search, and the horizon removes the oldest. A map would cost five
// times the memory per slot, and a city holds an hour of slots for each of
// thousands of sources.
type slotList []*slot

// find returns the index of the slot starting at start, or where it
// would go.
func (l slotList) find(start int64) (int, bool) {
	if n := len(l); n > 0 && l[n-1].startMs <= start {
		if l[n-1].startMs == start {
			return n - 1, true
		}
		return n, false
	}
	return slices.BinarySearchFunc(l, start, func(sl *slot, t int64) int { return cmp.Compare(sl.startMs, t) })
}

// newest is the latest slot, nil when there is none.
func (l slotList) newest() *slot {
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}
