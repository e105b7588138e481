package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFreezeRoundTrip: a frozen slot thaws to the same aggregates, bit for
// bit, whatever the values (whole, fractional, −0, the limits of int64,
// infinities, NaN) and ids (empty, long, not ASCII).
func TestFreezeRoundTrip(t *testing.T) {
	specials := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, -2.25, 1 << 53, -(1 << 53), 1 << 62,
		math.Ldexp(1, 63), -math.Ldexp(1, 63), 1e300, -1e-300, math.SmallestNonzeroFloat64, math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), 35.2, 0.1}
	ids := []string{"", "a", "cam-0001-000123", "phản-ánh-✓", string(make([]byte, 300))}
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		value := func() float64 {
			if rng.IntN(2) == 0 {
				return specials[rng.IntN(len(specials))]
			}
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10))
		}
		start := int64(rng.IntN(1<<40)) - 1<<39
		sl := &slot{startMs: start, endMs: start + minute, final: true}
		for range 1 + rng.IntN(40) { // past linearScanLimit too
			a := sl.agg(uint32(rng.IntN(1 << 20)))
			for range 1 + rng.IntN(4) {
				id := ids[rng.IntN(len(ids))] + fmt.Sprint(rng.IntN(3))
				var ref uint32
				ref, _ = sl.idRef(id, nil)
				sl.add(a, value(), start+int64(rng.IntN(int(minute))), id, ref)
			}
			a.count += uint64(rng.IntN(2)) << uint(rng.IntN(64)) // any count
		}
		want := resolved(sl)
		sl.freeze(nil, nil)
		if !sl.frozen() || sl.aggs != nil || sl.ids != nil || sl.index != nil {
			t.Fatalf("seed %d: frozen slot still holds its unpacked state", seed)
		}
		if n := sl.aggCount(); n != len(want) {
			t.Fatalf("seed %d: aggCount %d, want %d", seed, n, len(want))
		}
		sl.thaw()
		if sl.frozen() {
			t.Fatalf("seed %d: still frozen after thaw", seed)
		}
		got := resolved(sl)
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d aggregates, want %d", seed, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("seed %d: aggregate %d thawed as %+v, want %+v", seed, i, got[i], want[i])
			}
		}
		for i := range sl.aggs {
			if a := sl.agg(sl.aggs[i].key); a != &sl.aggs[i] {
				t.Fatalf("seed %d: key %d does not find its aggregate after thaw", seed, sl.aggs[i].key)
			}
		}
	}
}

// flatAgg is an aggregate with its values as bits and its ids resolved, so
// that == compares NaN and −0 exactly.
type flatAgg struct {
	key                        uint32
	count                      uint64
	sum, min, max, first, last uint64
	firstMs, lastMs            int64
	firstID, lastID            string
}

func resolved(sl *slot) []flatAgg {
	var out []flatAgg
	for _, a := range sl.aggs {
		b := math.Float64bits
		out = append(out, flatAgg{a.key, a.count, b(a.sum), b(a.min), b(a.max), b(a.first), b(a.last),
			a.firstMs, a.lastMs, sl.ids[a.firstID], sl.ids[a.lastID]})
	}
	return out
}

// TestUnpackRejectsDamage: a packed slot cut short or with bytes added is
// an error, never a panic or a slot with fewer aggregates.
func TestUnpackRejectsDamage(t *testing.T) {
	sl := &slot{startMs: 0, endMs: minute, final: true}
	for k := range uint32(5) {
		ref, _ := sl.idRef(fmt.Sprint("id", k), nil)
		sl.add(sl.agg(k), 1.5*float64(k), int64(k), fmt.Sprint("id", k), ref)
	}
	sl.freeze(nil, nil)
	good := sl.packed
	if _, _, err := unpack(good, 0); err != nil {
		t.Fatalf("intact: %v", err)
	}
	for n := range len(good) {
		if _, _, err := unpack(good[:n], 0); err == nil {
			t.Fatalf("cut to %d of %d bytes: no error", n, len(good))
		}
	}
	if _, _, err := unpack(append(append([]byte(nil), good...), 0), 0); err == nil {
		t.Fatal("a byte added: no error")
	}
}
