package silence

import (
	"slices"
	"testing"
	"time"
)

// Tests of what only reads the set, without a server.

// memStore is a Store without a bucket, for what only reads the set.
func memStore(now func() time.Time, retain time.Duration, sils ...Silence) *Store {
	s := &Store{cfg: Config{Now: now, Retain: retain}, changes: make(chan struct{}, 1), set: map[string]*entry{},
		closed: true} // closed: no timers
	for i, sil := range sils {
		sil.compiled, _ = compileAll(sil.Matchers)
		s.put(sil, uint64(i+1))
	}
	return s
}

func TestListOrder(t *testing.T) {
	at := func(id string, start, end time.Duration) Silence {
		return Silence{ID: id, Matchers: []Matcher{eq("area", "hue")}, StartsAt: t0.Add(start), EndsAt: t0.Add(end)}
	}
	h := time.Hour
	s := memStore(func() time.Time { return t0 }, 24*h,
		at("expired-old", -30*h, -25*h), // beyond Retain: not listed
		at("expired-1", -3*h, -2*h),
		at("expired-2", -3*h, -h),
		at("pending-2", 2*h, 3*h),
		at("active-2", -h, 2*h),
		at("pending-1", h, 5*h),
		at("active-1", -h, h),
		at("active-1b", -2*h, h), // same EndsAt: by id
	)
	var got []string
	for _, sil := range s.List() {
		got = append(got, sil.ID)
	}
	want := []string{"active-1", "active-1b", "active-2", "pending-1", "pending-2", "expired-2", "expired-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("List order %q, want %q", got, want)
	}
	if _, ok := s.Get("expired-old"); !ok {
		t.Fatal("Get does not find an expired silence the set still holds")
	}
	if got := s.SilencedBy(fields{"area": "hue"}); !slices.Equal(got, []string{"active-1", "active-1b", "active-2"}) {
		t.Fatalf("SilencedBy = %q", got)
	}
}

// The hot path allocates only for a match.
func TestSilencedByAllocs(t *testing.T) {
	var sils []Silence
	for _, src := range []string{"aq-1", "aq-2", "wx-.*"} {
		sils = append(sils, Silence{ID: src, Matchers: []Matcher{re("source", src), eq("area", "hue")},
			StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(time.Hour)})
	}
	s := memStore(func() time.Time { return t0 }, time.Hour, sils...)
	miss := fields{"area": "hue", "source": "aq-9"}
	if n := testing.AllocsPerRun(200, func() { s.SilencedBy(miss) }); n != 0 {
		t.Fatalf("SilencedBy without a match allocates %.1f times", n)
	}
	if got := s.SilencedBy(fields{"area": "hue", "source": "wx-7"}); !slices.Equal(got, []string{"wx-.*"}) {
		t.Fatalf("SilencedBy = %q", got)
	}
}
