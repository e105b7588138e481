package quality

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

func TestTracker(t *testing.T) {
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	tr := New(prometheus.NewRegistry())
	ev := func(source string, at time.Duration) *event.Event {
		return &event.Event{ID: "x", Kind: "environment", Type: "water_level", Source: source, Area: "kim-long", TimeMs: ms(at)}
	}
	steps := []struct {
		ev           *event.Event
		disp         window.Disposition
		latestBefore int64
	}{
		{ev("wl-kim-long", 0), window.Accepted, ms(-time.Hour)},
		{ev("wl-kim-long", time.Minute), window.Accepted, ms(0)},
		{ev("wl-kim-long", 30*time.Second), window.Corrected, ms(time.Minute)},  // 30 s late
		{ev("wl-kim-long", -2*time.Hour), window.Dropped, ms(time.Minute)},      // beyond the horizon
		{ev("wl-kim-long", time.Minute), window.Duplicate, ms(time.Minute)},     // not counted as accepted
		{ev("wl-phu-oc", 10*time.Minute), window.Accepted, ms(-24 * time.Hour)}, // the freshest
	}
	for _, s := range steps {
		tr.Event(s.ev, s.disp, s.latestBefore, ms(11*time.Minute))
	}
	if got := tr.Snapshot(); len(got) != 0 {
		t.Fatalf("a snapshot before Publish: %+v", got)
	}
	tr.Publish(base.Add(11 * time.Minute))
	got := tr.Snapshot()
	if len(got) != 2 || got[0].Source != "wl-kim-long" || got[1].Source != "wl-phu-oc" {
		t.Fatalf("want the stalest first: %+v", got)
	}
	k := got[0]
	if k.Accepted != 4 || k.Corrected != 1 || k.Dropped != 1 || k.Duplicates != 1 || k.Late != 2 ||
		k.MaxLatenessSeconds != (2*time.Hour+time.Minute).Seconds() || !k.LastEventTime.Equal(base.Add(time.Minute)) ||
		k.FreshnessSeconds != 600 || k.Area != "kim-long" {
		t.Fatalf("kim long: %+v", k)
	}
	if got[1].FreshnessSeconds != 60 {
		t.Fatalf("phu oc: %+v", got[1])
	}
}
