package daemon

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/window"
)

// fakeHistory is ClickHouse as a restart reads it: the events table (each
// event with its stream sequence and its source's latest time when counted),
// window_agg FINAL and the alerts table's keys.
type fakeHistory struct {
	events   []storedEvent
	windows  map[window.Row]window.Row // by key: the newest version
	keys     map[string]bool
	inserted []alert.Alert
}

type storedEvent struct {
	ev       event.Event
	latestMs int64
	seq      uint64
}

func (h *fakeHistory) LatestBySource(_ context.Context, maxSeq uint64, keep func(string) bool) (map[string]int64, error) {
	out := map[string]int64{}
	for _, s := range h.events {
		if s.seq <= maxSeq && (keep == nil || keep(s.ev.Area)) {
			if t, ok := out[s.ev.Source]; !ok || s.ev.TimeMs > t {
				out[s.ev.Source] = s.ev.TimeMs
			}
		}
	}
	return out, nil
}

func (h *fakeHistory) ReadEvents(_ context.Context, fromMs map[string]int64, maxSeq uint64, fn func(*event.Event, int64)) (int, error) {
	n := 0
	for _, s := range h.events {
		if from, ok := fromMs[s.ev.Source]; ok && s.seq <= maxSeq && s.ev.TimeMs >= from {
			ev := s.ev
			fn(&ev, s.latestMs)
			n++
		}
	}
	return n, nil
}

func (h *fakeHistory) LatestWindowStart(context.Context) (int64, error) {
	newest := int64(math.MinInt64)
	for _, r := range h.windows {
		newest = max(newest, r.StartMs/1000)
	}
	return newest, nil
}

func (h *fakeHistory) ReadPanes(_ context.Context, sizeSec uint32, fromSec int64, _ []string, fn func(*window.Row)) (int, error) {
	n := 0
	for _, r := range h.windows {
		if r.SizeMs == int64(sizeSec)*1000 && r.StartMs/1000 >= fromSec {
			row := r
			fn(&row)
			n++
		}
	}
	return n, nil
}

func (h *fakeHistory) AlertKeys(context.Context) (map[string]bool, error) { return h.keys, nil }

func (h *fakeHistory) InsertAlerts(_ context.Context, as []alert.Alert) error {
	h.inserted = append(h.inserted, as...)
	return nil
}

const restoreRules = `rules:
  - {name: high, kind: threshold, match: {metric: height}, window: 3m, agg: max, op: ">=", threshold: 2, clear: 1.5, severity: warning, group_by: [source]}
  - {name: high_area, kind: threshold, match: {metric: height}, window: 5m, agg: sum, op: ">=", threshold: 12, severity: info, group_by: [area], for: 2m}
  - {name: quiet, kind: absence, match: {kind: environment}, after: 20m, severity: info}
`

// run is one iocd process over a stream of events, as the pipeline drives
// it: window log, then the event, collects every few events.
type run struct {
	set       *window.Set
	engine    *alert.Engine
	published []alert.Alert
	hist      *fakeHistory
	acked     uint64 // events acknowledged (a collect seals the batch)
}

func (r *run) process(t *testing.T, evs []event.Event, from int, nowMs int64) {
	for i := from; i < len(evs); i++ {
		ev := evs[i]
		_, latest := r.set.Add(&ev, nowMs)
		r.hist.events = append(r.hist.events, storedEvent{ev, latest, uint64(i + 1)})
		r.engine.Windows(r.set.TakeUpdates(nil))
		r.engine.Event(&ev, nowMs)
		r.published = r.engine.Take(r.published)
		if i%7 == 6 {
			r.collect(nowMs, uint64(i+1))
		}
	}
}

func (r *run) collect(nowMs int64, acked uint64) {
	for _, row := range r.set.Collect(nil, nowMs, true) {
		k := row
		k.Count, k.Sum, k.Min, k.Max, k.First, k.Last, k.Final = 0, 0, 0, 0, 0, 0, false
		r.hist.windows[k] = row
	}
	r.engine.Windows(r.set.TakeUpdates(nil))
	r.engine.Tick(nowMs)
	r.published = r.engine.Take(r.published)
	r.acked = acked
}

// TestRestoreContinuesExactly: a process killed mid-stream and restored by
// restoreEngine from the store and IOC_ALERTS, then fed the events after
// its ack floor, publishes exactly what a process that never stopped does.
func TestRestoreContinuesExactly(t *testing.T) {
	rules, err := alert.ParseRules([]byte(restoreRules))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	nowMs := base.Add(3 * time.Hour).UnixMilli() // every event in the past, no source idle until the end
	var evs []event.Event
	for i := 0; i < 240; i++ {
		for s, src := range []string{"wl-a", "wl-b", "wl-c"} {
			h := 1 + 1.5*math.Sin(float64(i)/15+float64(s))
			evs = append(evs, event.Event{ID: fmt.Sprintf("%s-%d", src, i), Kind: "environment", Type: "water_level",
				Source: src, Area: []string{"kim-long", "kim-long", "huong-tra"}[s],
				TimeMs:      base.Add(time.Duration(i)*20*time.Second + time.Duration(s*3+i%5)*time.Second).UnixMilli(),
				MetricNames: []string{"height"}, MetricValues: []float64{math.Round(h*100) / 100}})
		}
	}
	newRun := func() *run {
		set, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: cfg.AllowedLateness.D(),
			IdleTimeout: cfg.IdleTimeout.D(), CorrectionHorizon: cfg.CorrectionHorizon.D()})
		if err != nil {
			t.Fatal(err)
		}
		return &run{set: set, engine: alert.NewEngine(alert.EngineConfig{Now: func() time.Time { return time.UnixMilli(nowMs) }}, rules),
			hist: &fakeHistory{windows: map[window.Row]window.Row{}, keys: map[string]bool{}}}
	}
	ref := newRun()
	ref.process(t, evs, 0, nowMs)
	ref.collect(nowMs+time.Hour.Milliseconds(), uint64(len(evs)))
	if len(ref.published) < 4 {
		t.Fatalf("the reference run decided only %d transitions", len(ref.published))
	}

	first := newRun()
	first.process(t, evs[:len(evs)/2], 0, nowMs) // then SIGKILL
	floor := first.acked
	stored := make([]alert.Alert, len(first.published))
	copy(stored, first.published)
	alerts := func(context.Context) ([]alert.Alert, int, error) { return stored, 0, nil }
	alerting, engine, windows, err := restoreEngine(context.Background(), cfg, first.hist, alerts, rules, nil, nil, "", floor,
		metrics.New(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(first.hist.inserted) != len(stored) {
		t.Errorf("the alerts table lacked %d transitions; %d written", len(stored), len(first.hist.inserted))
	}
	firing := 0
	for _, a := range alert.Latest(stored) {
		if a.Status == alert.StatusFiring {
			firing++
		}
	}
	if len(alerting.Firing) != firing {
		t.Errorf("%d alerts firing at the kill, %d restored", firing, len(alerting.Firing))
	}
	second := &run{set: windows, engine: engine, hist: first.hist, published: first.published}
	second.process(t, evs, int(floor), nowMs)
	second.collect(nowMs+time.Hour.Milliseconds(), uint64(len(evs)))

	// What reaches IOC_ALERTS: a transition published again after the
	// restart has the same Nats-Msg-Id and is stored once.
	var got []string
	seen := map[string]bool{}
	for _, a := range second.published {
		if !seen[a.MsgID()] {
			seen[a.MsgID()] = true
			got = append(got, fmt.Sprintf("%s %s %s %s %g @%s", a.MsgID(), a.Rule, a.Status, a.Severity, a.Value, a.EvalTime.Format("15:04")))
		}
	}
	var want []string
	for _, a := range ref.published {
		want = append(want, fmt.Sprintf("%s %s %s %s %g @%s", a.MsgID(), a.Rule, a.Status, a.Severity, a.Value, a.EvalTime.Format("15:04")))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a restart at ack floor %d of %d:\n%v\nwithout one:\n%v", floor, len(evs), got, want)
	}
	t.Logf("restart at ack floor %d of %d events, %d transitions out before it; %d in all, as without a restart",
		floor, len(evs), len(stored), len(want))
}
