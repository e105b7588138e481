package window

import (
	"encoding/binary"
	"fmt"
	"math"
)

// A final slot that has been written changes only if a correction comes,
// and a city holds an hour of them for every source: 90 % of the window
// state. freeze packs such a slot's aggregates and ids into one byte slice
// of about a quarter of their size (counts, keys, offsets and whole-number
// values as varints, other values as their 8 bytes, so every value comes
// back bit for bit); thaw unpacks it when a correction arrives.
//
// The packed form:
//
//	uvarint aggregates, uvarint ids
//	each id's uvarint length, then the ids' bytes
//	for each aggregate:
//	  uvarint key, count, firstID, lastID
//	  varint firstMs−startMs, lastMs−startMs
//	  byte: bit i set when value i (sum, min, max, first, last) is whole
//	  each value: a varint when whole, else its 8 bytes little-endian

// frozen reports whether the slot's state is packed.
func (sl *slot) frozen() bool { return sl.packed != nil }

// freeze packs a final slot, unless it holds nothing. buf is scratch
// space, returned for reuse; the slot keeps a copy of exactly its size.
func (sl *slot) freeze(buf []byte, remap []int32) ([]byte, []int32) {
	if sl.frozen() || len(sl.aggs) == 0 {
		return buf, remap
	}
	remap = sl.compactIDs(remap)
	buf = binary.AppendUvarint(buf[:0], uint64(len(sl.aggs)))
	buf = binary.AppendUvarint(buf, uint64(len(sl.ids)))
	for _, id := range sl.ids {
		buf = binary.AppendUvarint(buf, uint64(len(id)))
	}
	for _, id := range sl.ids {
		buf = append(buf, id...)
	}
	for i := range sl.aggs {
		a := &sl.aggs[i]
		buf = binary.AppendUvarint(buf, uint64(a.key))
		buf = binary.AppendUvarint(buf, a.count)
		buf = binary.AppendUvarint(buf, uint64(a.firstID))
		buf = binary.AppendUvarint(buf, uint64(a.lastID))
		buf = binary.AppendVarint(buf, a.firstMs-sl.startMs)
		buf = binary.AppendVarint(buf, a.lastMs-sl.startMs)
		vals := [5]float64{a.sum, a.min, a.max, a.first, a.last}
		var whole byte
		for j, v := range vals {
			if _, ok := wholeNumber(v); ok {
				whole |= 1 << j
			}
		}
		buf = append(buf, whole)
		for j, v := range vals {
			if whole&(1<<j) != 0 {
				buf = binary.AppendVarint(buf, int64(v))
			} else {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			}
		}
	}
	sl.packed = append(make([]byte, 0, len(buf)), buf...)
	sl.aggs, sl.ids, sl.index = nil, nil, nil
	return buf, remap
}

// wholeNumber reports whether v is an integer that converts to int64 and
// back unchanged (not −0, which would come back as +0).
func wholeNumber(v float64) (int64, bool) {
	i := int64(v)
	return i, float64(i) == v && (v != 0 || !math.Signbit(v))
}

// thaw unpacks a frozen slot so that it can change again.
func (sl *slot) thaw() {
	if !sl.frozen() {
		return
	}
	aggs, ids, err := unpack(sl.packed, sl.startMs)
	if err != nil {
		// Only freeze writes packed, so this is a bug, not bad input.
		panic(fmt.Sprintf("window: slot %d: %v", sl.startMs, err))
	}
	sl.aggs, sl.ids, sl.packed = aggs, ids, nil
	if len(sl.aggs) > linearScanLimit {
		sl.reindex()
	}
}

// aggCount is how many aggregates the slot holds, frozen or not.
func (sl *slot) aggCount() int {
	if !sl.frozen() {
		return len(sl.aggs)
	}
	n, _ := binary.Uvarint(sl.packed)
	return int(n)
}

func unpack(b []byte, startMs int64) ([]agg, []string, error) {
	r := reader{b: b}
	nAggs, nIDs := r.uvarint(), r.uvarint()
	if r.err == nil && (nAggs > uint64(len(b)) || nIDs > uint64(len(b))) {
		r.err = fmt.Errorf("%d aggregates and %d ids in %d bytes", nAggs, nIDs, len(b))
		return nil, nil, r.err
	}
	lens := make([]uint64, 0, nIDs)
	total := uint64(0)
	for range nIDs {
		n := r.uvarint()
		lens = append(lens, n)
		total += n
	}
	all := string(r.bytes(total)) // one allocation for every id
	if r.err != nil {
		return nil, nil, r.err
	}
	ids := make([]string, 0, nIDs)
	for _, n := range lens {
		ids = append(ids, all[:n])
		all = all[n:]
	}
	aggs := make([]agg, 0, nAggs)
	for range nAggs {
		if r.err != nil {
			break
		}
		a := agg{key: uint32(r.uvarint()), count: r.uvarint(), firstID: uint32(r.uvarint()), lastID: uint32(r.uvarint())}
		a.firstMs, a.lastMs = startMs+r.varint(), startMs+r.varint()
		whole := r.byte()
		var vals [5]float64
		for j := range vals {
			if whole&(1<<j) != 0 {
				vals[j] = float64(r.varint())
			} else {
				vals[j] = r.float()
			}
		}
		a.sum, a.min, a.max, a.first, a.last = vals[0], vals[1], vals[2], vals[3], vals[4]
		if r.err == nil && (int(a.firstID) >= len(ids) || int(a.lastID) >= len(ids)) {
			r.err = fmt.Errorf("aggregate refers to id %d/%d of %d", a.firstID, a.lastID, len(ids))
		}
		aggs = append(aggs, a)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes left over", len(r.b))
	}
	return aggs, ids, r.err
}

// reader reads the packed form, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail("truncated")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) float() float64 {
	p := r.bytes(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("packed slot: %s", msg)
	}
	r.b = nil
}
