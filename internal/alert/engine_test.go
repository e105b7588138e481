package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// base is a whole hour in UTC (17:00 in Huế).
var base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func mustRules(t *testing.T, yaml string) []Rule {
	t.Helper()
	rules, err := ParseRules([]byte("rules:\n" + yaml))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return rules
}

// wall is a settable wall clock.
type wall struct{ t time.Time }

func (w *wall) now() time.Time { return w.t }

func newEngine(t *testing.T, yaml string) (*Engine, *wall) {
	w := &wall{base}
	return NewEngine(EngineConfig{Now: w.now}, mustRules(t, yaml)), w
}

// paneRow is a 1-minute pane of source at minute m after base with one
// value (count 1).
func paneRow(source, area, metric string, m int, v float64, final bool) window.Row {
	return window.Row{StartMs: base.Add(time.Duration(m) * time.Minute).UnixMilli(), SizeMs: 60_000,
		Kind: "environment", Type: "water_level", Metric: metric, Area: area, Source: source,
		Count: 1, Sum: v, Min: v, Max: v, First: v, Last: v, Final: final}
}

// updates wraps window rows as the windows' log carries them.
func updates(rows ...window.Row) []window.Update {
	ups := make([]window.Update, len(rows))
	for i, r := range rows {
		ups[i] = window.Update{Row: r}
	}
	return ups
}

// brief renders transitions compactly: minute:status/severity#seq.
func brief(alerts []Alert) string {
	var out []string
	for _, a := range alerts {
		m := int(a.EvalTime.Sub(base) / time.Minute)
		out = append(out, fmt.Sprintf("%d:%s/%s#%d", m, a.Status, a.Severity, a.Seq))
	}
	return strings.Join(out, " ")
}

const kimLongRule = `
  - name: river_level_kim_long
    kind: threshold
    summary: "Mực nước sông Hương tại Kim Long {{value}} m ≥ {{level}} ({{threshold}} m)"
    category: naturalDisaster
    subCategory: flood
    labels: {river: huong}
    match: {kind: environment, type: water_level, metric: height, source: wl-kim-long}
    window: 3m
    agg: max
    op: ">="
    levels:
      - {threshold: 1.0, severity: info, name: báo động 1}
      - {threshold: 2.0, severity: warning, name: báo động 2}
      - {threshold: 3.5, severity: critical, name: báo động 3}
    clear: 0.9
    group_by: [source]
`

func TestThresholdLadder(t *testing.T) {
	e, _ := newEngine(t, kimLongRule)
	values := []float64{0.5, 1.1, 1.5, 2.13, 2.5, 3.6, 3.0, 1.2, 0.95, 0.7, 0.6, 0.5, 0.4}
	var got []Alert
	for m, v := range values {
		e.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, v, true)))
		got = e.Take(got)
	}
	// Evaluated at pane ends (minute+1), max over 3 panes: 3.0 at 9 is
	// below critical less the 0.1 margin, 1.2 at 10 is info, 0.95 at 11
	// holds info (clear 0.9), 0.7 at 12 resolves.
	want := "2:firing/info#1 4:firing/warning#2 6:firing/critical#3 9:firing/warning#4 10:firing/info#5 12:resolved/info#6"
	if b := brief(got); b != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// A backlog hands over many panes at once: the same ladder, no step skipped.
	batch, _ := newEngine(t, kimLongRule)
	var rows []window.Row
	for m, v := range values {
		rows = append(rows, paneRow("wl-kim-long", "kim-long", "height", m, v, true))
	}
	batch.Windows(updates(rows...))
	if b := brief(batch.Take(nil)); b != want {
		t.Fatalf("all panes in one call: got %s\nwant %s", b, want)
	}
	for _, a := range got {
		if a.ID != got[0].ID || a.Fingerprint != got[0].Fingerprint {
			t.Fatalf("one episode, one id and fingerprint: %+v", a)
		}
	}
	w := got[1]
	if w.Summary != "Mực nước sông Hương tại Kim Long 2.13 m ≥ báo động 2 (2 m)" {
		t.Errorf("summary %q", w.Summary)
	}
	if w.Subject() != "ioc.alerts.warning.environment.kim-long" || w.MsgID() != w.ID+":2" {
		t.Errorf("subject %s msgid %s", w.Subject(), w.MsgID())
	}
	if w.Labels["river"] != "huong" || w.Agg != "max" || w.Window != "3m" || w.Op != ">=" || w.Threshold != 2 ||
		w.Source != "wl-kim-long" || w.Metric != "height" || w.Category != "naturalDisaster" {
		t.Errorf("fields: %+v", w)
	}
	last := got[len(got)-1]
	if last.EndsAt == nil || !last.EndsAt.Equal(base.Add(12*time.Minute)) || !strings.HasPrefix(last.Summary, "Đã kết thúc") {
		t.Errorf("resolved: %+v", last)
	}
}

func TestThresholdRules(t *testing.T) {
	type feed struct {
		source, area string
		minute       int
		value        float64
		final        bool
	}
	tests := []struct {
		name  string
		rule  string
		feeds []feed
		want  string
	}{
		{
			name: "for holds pending, then fires",
			rule: `
  - {name: r, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: warning, for: 2m}`,
			feeds: []feed{{"a", "x", 0, 2, true}, {"a", "x", 1, 2, true}, {"a", "x", 2, 2, true}},
			want:  "3:firing/warning#1",
		},
		{
			name: "pending resets when the value drops",
			rule: `
  - {name: r, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: warning, for: 2m}`,
			feeds: []feed{{"a", "x", 0, 2, true}, {"a", "x", 1, 0, true}, {"a", "x", 2, 2, true}, {"a", "x", 3, 2, true}},
			want:  "",
		},
		{
			name: "rate_per_hour: rising 0.5 m in 30 min",
			rule: `
  - {name: r, kind: threshold, match: {metric: height}, window: 60m, agg: rate_per_hour, op: ">=", threshold: 0.3, severity: warning, clear: 0.1}`,
			feeds: []feed{{"a", "x", 0, 1.0, true}, {"a", "x", 15, 1.2, true}, {"a", "x", 30, 1.5, true}, {"a", "x", 45, 1.5, true}, {"a", "x", 100, 1.5, true}, {"a", "x", 110, 1.5, true}},
			// The first rate needs data across half the window (30 min).
			want: "31:firing/warning#1 101:resolved/warning#2",
		},
		{
			name: "rate_per_hour ignores gauge noise over a short span",
			rule: `
  - {name: r, kind: threshold, match: {metric: height}, window: 60m, agg: rate_per_hour, op: ">=", threshold: 0.3, severity: warning}`,
			feeds: []feed{{"a", "x", 0, 1.00, true}, {"a", "x", 1, 1.01, true}, {"a", "x", 2, 0.99, true}, {"a", "x", 3, 1.01, true}},
			want:  "",
		},
		{
			name: "avg below a falling threshold with clear",
			rule: `
  - {name: r, kind: threshold, match: {metric: height}, window: 2m, agg: avg, op: "<=", threshold: 16, clear: 22, severity: warning}`,
			feeds: []feed{{"a", "x", 0, 30, true}, {"a", "x", 1, 10, true}, {"a", "x", 2, 14, true}, {"a", "x", 3, 20, true}, {"a", "x", 4, 24, true}, {"a", "x", 5, 24, true}},
			want:  "3:firing/warning#1 5:resolved/warning#2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t, tt.rule)
			var got []Alert
			for _, f := range tt.feeds {
				e.Windows(updates(paneRow(f.source, f.area, "height", f.minute, f.value, f.final)))
				got = e.Take(got)
			}
			if b := brief(got); b != tt.want {
				t.Fatalf("got  %q\nwant %q", b, tt.want)
			}
		})
	}
}

// feeder runs events through a real window.Set into an engine, as the
// pipeline does: each event's window updates, then the event itself.
type feeder struct {
	set *window.Set
	e   *Engine
	got []Alert
}

func newFeeder(t *testing.T, rules string, lateness time.Duration) *feeder {
	t.Helper()
	set, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: lateness,
		IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, rules)
	return &feeder{set: set, e: e}
}

func waterEvent(id, source, area string, at time.Duration, v float64) *event.Event {
	return &event.Event{ID: id, Kind: "environment", Type: "water_level", Source: source, Area: area,
		TimeMs: base.Add(at).UnixMilli(), MetricNames: []string{"height"}, MetricValues: []float64{v}}
}

func (f *feeder) event(ev *event.Event) {
	now := base.UnixMilli()
	f.set.Add(ev, now)
	f.e.Windows(f.set.TakeUpdates(nil))
	f.e.Event(ev, now)
	f.got = f.e.Take(f.got)
}

// idle finalises everything: every source has been silent for the idle timeout.
func (f *feeder) idle() {
	now := base.Add(24 * time.Hour).UnixMilli()
	f.set.Collect(nil, now, false)
	f.e.Windows(f.set.TakeUpdates(nil))
	f.got = f.e.Take(f.got)
}

func TestEarlyRaisesOnPartialPanesOnly(t *testing.T) {
	f := newFeeder(t, `
  - {name: r, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">=", threshold: 1, severity: warning, early: true}`, 0)
	f.event(waterEvent("1", "a", "x", 10*time.Second, 1.2))
	if b := brief(f.got); b != "1:firing/warning#1" {
		t.Fatalf("an early rule fires on the event that crosses: %q", b)
	}
	f.event(waterEvent("2", "a", "x", 70*time.Second, 0.2)) // minute 0 final: still 1.2
	f.event(waterEvent("3", "a", "x", 80*time.Second, 0.3))
	if b := brief(f.got); b != "1:firing/warning#1" {
		t.Fatalf("a partial pane must not resolve: %q", b)
	}
	f.event(waterEvent("4", "a", "x", 130*time.Second, 0.1)) // minute 1 final: 0.3
	if b := brief(f.got); b != "1:firing/warning#1 2:resolved/warning#2" {
		t.Fatalf("the final pane resolves: %q", b)
	}
	if v := f.got[0].Value; v != 1.2 {
		t.Fatalf("early value %v", v)
	}

	late := newFeeder(t, `
  - {name: r, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">=", threshold: 1, severity: warning}`, 0)
	late.event(waterEvent("1", "a", "x", 10*time.Second, 1.2))
	if len(late.got) != 0 {
		t.Fatalf("without early a partial pane is not evaluated: %s", brief(late.got))
	}
	late.idle()
	if b := brief(late.got); b != "1:firing/warning#1" {
		t.Fatalf("the idle timeout makes the pane final: %q", b)
	}
}

// TestGroupWaitsForEverySource: a group's pane end is decided when every
// source of the group is final through it, not when the first one is.
func TestGroupWaitsForEverySource(t *testing.T) {
	rule := `
  - {name: r, kind: threshold, match: {metric: height}, window: 2m, agg: sum, op: ">=", threshold: 5, severity: info, group_by: [area]}`
	f := newFeeder(t, rule, 0)
	f.event(waterEvent("a0", "a", "x", 30*time.Second, 2))
	f.event(waterEvent("b0", "b", "x", 30*time.Second, 2))
	f.event(waterEvent("c0", "c", "y", 30*time.Second, 9))
	f.event(waterEvent("a1", "a", "x", 90*time.Second, 1)) // a final through minute 1; b is not
	f.event(waterEvent("c1", "c", "y", 90*time.Second, 0))
	if b := brief(f.got); b != "1:firing/info#1" {
		t.Fatalf("y decided at 1, x waits for b: %q", b)
	}
	f.event(waterEvent("b1", "b", "x", 100*time.Second, 0.5)) // b final through minute 1 too
	if b := brief(f.got); b != "1:firing/info#1" {
		t.Fatalf("x at 1 is 4: %q", b)
	}
	f.idle() // x at 2: 2 + 2 + 1 + 0.5
	if b := brief(f.got); b != "1:firing/info#1 2:firing/info#1" {
		t.Fatalf("x at 2: %q", b)
	}
	if f.got[1].Area != "x" || f.got[1].Value != 5.5 {
		t.Fatalf("x fired with %+v", f.got[1])
	}
}

func TestActiveHours(t *testing.T) {
	// 13:58 UTC is 20:58 in Huế; the day limit stops applying at 21:00.
	e, _ := newEngine(t, `
  - {name: noise_day, kind: threshold, match: {metric: LAeq}, window: 1m, agg: avg, op: ">", threshold: 70, severity: warning, active_hours: "06:00-21:00"}
  - {name: noise_night, kind: threshold, match: {metric: LAeq}, window: 1m, agg: avg, op: ">", threshold: 55, severity: warning, active_hours: "21:00-06:00"}`)
	var got []string
	for m := 238; m < 242; m++ { // 13:58 .. 14:01 UTC
		e.Windows(updates(paneRow("n1", "x", "LAeq", m, 60+float64(m-238)*10, true)))
		for _, a := range e.Take(nil) {
			got = append(got, fmt.Sprintf("%s:%s@%s", a.Rule, a.Status, a.EvalTime.In(HoChiMinh()).Format("15:04")))
		}
	}
	// 60 and 70 dBA by day: quiet enough. 80 at 21:00-21:01 is night: the
	// night rule fires.
	want := "noise_night:firing@21:01"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	e2, _ := newEngine(t, `
  - {name: noise_day, kind: threshold, match: {metric: LAeq}, window: 1m, agg: avg, op: ">", threshold: 70, severity: warning, active_hours: "06:00-21:00"}`)
	e2.Windows(updates(paneRow("n1", "x", "LAeq", 238, 75, true)))
	e2.Windows(updates(paneRow("n1", "x", "LAeq", 240, 75, true)))
	if b := brief(e2.Take(nil)); b != "239:firing/warning#1 241:resolved/warning#2" {
		t.Fatalf("a day rule must resolve when the night starts: %s", b)
	}
}

func cameraEvent(source string, m int, confidence float64) *event.Event {
	return &event.Event{ID: fmt.Sprint(source, m), Kind: "camera", Type: "fire", Source: source, Area: "phu-hoi",
		TimeMs:      base.Add(time.Duration(m) * time.Minute).UnixMilli(),
		MetricNames: []string{"confidence"}, MetricValues: []float64{confidence}}
}

const fireRule = `
  - name: camera_fire
    kind: event
    summary: "Camera {{source}} phát hiện {{type}} (độ tin cậy {{value}})"
    match: {kind: camera, type: [fire, smoke]}
    when: ["confidence >= 0.8"]
    severity: critical
    resolve_after: 15m
    group_by: [source, type]
`

func TestEventRule(t *testing.T) {
	e, w := newEngine(t, fireRule)
	step := func(m int, conf float64) string {
		ev := cameraEvent("cam-1", m, conf)
		w.t = base.Add(time.Duration(m) * time.Minute)
		e.Event(ev, w.t.UnixMilli())
		e.Tick(w.t.UnixMilli())
		out := e.Take(nil)
		for _, a := range out {
			// The value is compared with its condition, as a threshold's is.
			if a.Op != ">=" || a.Threshold != 0.8 || a.Metric != "confidence" {
				t.Fatalf("minute %d: %s %v %s, want confidence >= 0.8", m, a.Metric, a.Threshold, a.Op)
			}
		}
		return brief(out)
	}
	steps := []struct {
		minute int
		conf   float64
		want   string
	}{
		{0, 0.5, ""},                        // below the condition
		{1, 0.9, "1:firing/critical#1"},     // fires
		{5, 0.95, ""},                       // repeated match: an update, not a new alert
		{19, 0.2, ""},                       // 14 min after the last match
		{20, 0.3, "20:resolved/critical#2"}, // resolve_after 15m after minute 5
		{21, 0.85, "21:firing/critical#1"},  // a new episode
	}
	var ids []string
	for _, s := range steps {
		got := step(s.minute, s.conf)
		if got != s.want {
			t.Fatalf("minute %d: got %q, want %q", s.minute, got, s.want)
		}
	}
	_ = ids
}

func TestEventRuleAttrsCondition(t *testing.T) {
	e, _ := newEngine(t, `
  - {name: urgent, kind: event, match: {kind: feedback}, when: ["attrs.priority == urgent"], severity: warning, resolve_after: 60m}`)
	ev := &event.Event{ID: "1", Kind: "feedback", Type: "flooding", Source: "hue-s", Area: "an-cuu", TimeMs: base.UnixMilli(),
		MetricNames: []string{}, AttrKeys: []string{"category", "priority"}, AttrValues: []string{"flooding", "normal"}}
	e.Event(ev, base.UnixMilli())
	if got := e.Take(nil); len(got) != 0 {
		t.Fatalf("normal priority fired: %+v", got)
	}
	ev.AttrValues[1] = "urgent"
	e.Event(ev, base.UnixMilli())
	got := e.Take(nil)
	if len(got) != 1 || got[0].Area != "an-cuu" || got[0].Subject() != "ioc.alerts.warning.feedback.an-cuu" {
		t.Fatalf("urgent report: %+v", got)
	}
}

func TestAbsenceRule(t *testing.T) {
	e, w := newEngine(t, `
  - {name: silent, kind: absence, summary: "Trạm {{source}} không gửi dữ liệu", match: {kind: environment}, after: 30m, severity: warning}`)
	send := func(source string, m int) {
		ev := &event.Event{ID: fmt.Sprint(source, m), Kind: "environment", Type: "water_level", Source: source, Area: "x",
			TimeMs: base.Add(time.Duration(m) * time.Minute).UnixMilli(), MetricNames: []string{"height"}, MetricValues: []float64{1}}
		e.Event(ev, w.t.UnixMilli())
	}
	var got []Alert
	for m := 0; m <= 40; m++ {
		w.t = base.Add(time.Duration(m) * time.Minute)
		send("busy", m)
		if m == 0 {
			send("quiet", 0)
		}
		if m == 40 {
			send("quiet", 40)
		}
		e.Tick(w.t.UnixMilli())
		got = e.Take(got)
	}
	if b := brief(got); b != "30:firing/warning#1 40:resolved/warning#2" {
		t.Fatalf("got %s", b)
	}
	if got[0].Source != "quiet" || got[0].Summary != "Trạm quiet không gửi dữ liệu" {
		t.Fatalf("alert: %+v", got[0])
	}
}

func TestIdleClockResolvesWhenTheCityIsQuiet(t *testing.T) {
	e, w := newEngine(t, fireRule)
	e.Event(cameraEvent("cam-1", 0, 0.9), base.UnixMilli())
	e.Tick(base.UnixMilli())
	if len(e.Take(nil)) != 1 {
		t.Fatal("no firing")
	}
	// No event at all any more: after IdleAdvance (1m) the clock follows
	// the wall clock; resolve_after 15m is then due at wall +16m.
	w.t = base.Add(15*time.Minute + 59*time.Second)
	e.Tick(w.t.UnixMilli())
	if got := e.Take(nil); len(got) != 0 {
		t.Fatalf("resolved too early: %s", brief(got))
	}
	w.t = base.Add(16 * time.Minute)
	e.Tick(w.t.UnixMilli())
	if got := brief(e.Take(nil)); got != "15:resolved/critical#2" {
		t.Fatalf("got %q: the resolution time comes from the data (last match + 15m)", got)
	}
}

// TestRestoreNeitherRepeatsNorForgets replays events after a restore from
// the last published transitions, as after a crash before the ack.
func TestRestoreNeitherRepeatsNorForgets(t *testing.T) {
	feed := func(e *Engine, from, to int, values []float64) []Alert {
		var got []Alert
		for m := from; m < to; m++ {
			e.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, values[m], true)))
			got = e.Take(got)
		}
		return got
	}
	values := []float64{1.1, 1.2, 2.2, 2.3, 2.4, 1.5, 1.4, 1.3, 0.5, 0.5, 0.5, 0.5}
	ref, _ := newEngine(t, kimLongRule)
	all := feed(ref, 0, len(values), values)
	if brief(all) != "1:firing/info#1 3:firing/warning#2 8:firing/info#3 11:resolved/info#4" {
		t.Fatalf("reference run: %s", brief(all))
	}
	// The first process published up to the escalation (minute 3) but its
	// ack covered only minute 1: the new one replays from minute 2.
	restarted, _ := newEngine(t, kimLongRule)
	restarted.Restore([]Alert{all[1]})
	if got := restarted.Take(nil); len(got) != 0 {
		t.Fatalf("restore published %s", brief(got))
	}
	rest := feed(restarted, 2, len(values), values)
	if brief(rest) != brief(all[2:]) || rest[0].ID != all[0].ID {
		t.Fatalf("after restart got %s (id %s), want %s (id %s)", brief(rest), rest[0].ID, brief(all[2:]), all[0].ID)
	}
}

func TestRestoreResolvesAnOrphan(t *testing.T) {
	e, _ := newEngine(t, fireRule)
	e.Restore([]Alert{{ID: "x", Seq: 2, Fingerprint: "gone", Rule: "deleted_rule", Status: StatusFiring, Severity: Warning,
		Kind: "camera", Area: "a", EvalTime: base}})
	got := e.Take(nil)
	if len(got) != 1 || got[0].Status != StatusResolved || got[0].Seq != 3 || got[0].ID != "x" {
		t.Fatalf("got %+v", got)
	}
}

func TestReload(t *testing.T) {
	const pendingRule = `
  - {name: slow, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: info, for: 3m}`
	const gone = `
  - {name: fast, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: warning}`
	e, w := newEngine(t, pendingRule+gone)
	step := func(m int) string {
		e.Windows(updates(paneRow("a", "x", "height", m, 2, true)))
		w.t = base.Add(time.Duration(m+1) * time.Minute)
		e.Tick(w.t.UnixMilli())
		var out []string
		for _, a := range e.Take(nil) {
			out = append(out, a.Rule+"@"+brief([]Alert{a}))
		}
		return strings.Join(out, " ")
	}
	if got := step(0); got != "fast@1:firing/warning#1" {
		t.Fatal(got)
	}
	step(1)
	// Reload: "slow" unchanged keeps its pending timer; "fast" is removed
	// and its firing alert resolves; "fast2" is new.
	e.SetRules(mustRules(t, pendingRule+strings.ReplaceAll(gone, "fast", "fast2")))
	got := step(2)
	if !strings.Contains(got, "fast@") || !strings.Contains(got, "resolved/warning#2") {
		t.Fatalf("the removed rule's alert must resolve: %q", got)
	}
	if !strings.Contains(got, "fast2@3:firing/warning#1") {
		t.Fatalf("the new rule applies from the next evaluation: %q", got)
	}
	if got := step(3); got != "slow@4:firing/info#1" {
		t.Fatalf("the unchanged rule must keep its pending timer (fire at 4 min): %q", got)
	}
	// A changed rule keeps its firing alert: same id, next seq.
	before := e.rules[0].groups
	e.SetRules(mustRules(t, strings.ReplaceAll(pendingRule, "threshold: 1,", "threshold: 3,")))
	got = step(4)
	if got != "fast2@4:resolved/warning#2 slow@5:resolved/info#2" || len(before) == 0 {
		t.Fatalf("changed threshold: %q", got)
	}
}

func TestReplayGivesTheSameIDs(t *testing.T) {
	run := func() []Alert {
		e, w := newEngine(t, fireRule+kimLongRule)
		var got []Alert
		for m := 0; m < 30; m++ {
			w.t = base.Add(time.Duration(m) * time.Minute)
			e.Event(cameraEvent("cam-1", m, float64(m%10)/10), w.t.UnixMilli())
			e.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, float64(m)/8, true)))
			e.Tick(w.t.UnixMilli())
			got = e.Take(got)
		}
		return got
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("runs differ: %d vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i].MsgID() != b[i].MsgID() || !a[i].EvalTime.Equal(b[i].EvalTime) {
			t.Fatalf("transition %d differs: %s vs %s", i, a[i].MsgID(), b[i].MsgID())
		}
	}
}

func TestReloadWithOtherGroupingResolvesTheOldAlerts(t *testing.T) {
	const bySource = `
  - {name: r, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: info, group_by: [source]}`
	e, _ := newEngine(t, bySource)
	e.Windows(updates(paneRow("a", "x", "height", 0, 2, true)))
	first := e.Take(nil)
	e.SetRules(mustRules(t, strings.ReplaceAll(bySource, "[source]", "[area]")))
	e.Windows(updates(paneRow("a", "x", "height", 1, 2, true)))
	got := e.Take(nil)
	if len(first) != 1 || len(got) != 2 || got[0].Status != StatusResolved || got[0].ID != first[0].ID ||
		got[1].Status != StatusFiring || got[1].Fingerprint == first[0].Fingerprint {
		t.Fatalf("first %s, after the reload %s", brief(first), brief(got))
	}
}

func TestAcknowledge(t *testing.T) {
	e, w := newEngine(t, kimLongRule)
	feed := func(m int, v float64) []Alert {
		e.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, v, true)))
		return e.Take(nil)
	}
	fired := feed(0, 1.2)
	if len(fired) != 1 {
		t.Fatal("no alert")
	}
	fp := fired[0].Fingerprint
	w.t = base.Add(90 * time.Second)
	e.Acknowledge(fp, "trực ban Lan", "đã báo đội ứng cứu")
	e.Acknowledge("no-such-fingerprint", "x", "")
	e.Tick(w.t.UnixMilli())
	acked := e.Take(nil)
	if len(acked) != 1 {
		t.Fatalf("acknowledgement: %d transitions", len(acked))
	}
	a := acked[0]
	if a.ID != fired[0].ID || a.Seq != 2 || a.Status != StatusFiring || a.Severity != Info || a.AcknowledgedBy != "trực ban Lan" ||
		a.AcknowledgedAt == nil || !a.AcknowledgedAt.Equal(w.t) || a.AckComment != "đã báo đội ứng cứu" || !a.EvalTime.Equal(fired[0].EvalTime) {
		t.Fatalf("acknowledged transition: %+v", a)
	}
	// The same acknowledgement again changes nothing.
	e.Acknowledge(fp, "trực ban Lan", "đã báo đội ứng cứu")
	e.Tick(w.t.UnixMilli())
	if got := e.Take(nil); len(got) != 0 {
		t.Fatalf("a repeated acknowledgement published %s", brief(got))
	}
	// Still acknowledged while the level holds; a rise clears it.
	if got := feed(1, 1.3); len(got) != 0 {
		t.Fatalf("unexpected %s", brief(got))
	}
	up := feed(2, 2.2)
	if len(up) != 1 || up[0].Severity != Warning || up[0].AcknowledgedBy != "" {
		t.Fatalf("escalation must ask for a new acknowledgement: %+v", up)
	}
	// A restart keeps an acknowledgement: the restored engine, with its
	// pane history, makes the same next transition, still acknowledged.
	e.Acknowledge(fp, "Minh", "")
	e.Tick(w.t.UnixMilli())
	last := e.Take(nil)
	restarted, _ := newEngine(t, kimLongRule)
	restarted.Restore(last)
	for m, v := range []float64{1.2, 1.3, 2.2} {
		r := paneRow("wl-kim-long", "kim-long", "height", m, v, true)
		restarted.RestorePane(&r)
	}
	var want, got []Alert
	for m := 3; m <= 5; m++ {
		want = append(want, feed(m, 1.5)...)
		restarted.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, 1.5, true)))
		got = append(got, restarted.Take(nil)...)
	}
	if len(want) != 1 || len(got) != 1 || got[0].MsgID() != want[0].MsgID() || got[0].AcknowledgedBy != "Minh" ||
		want[0].AcknowledgedBy != "Minh" || got[0].Severity != Info {
		t.Fatalf("after a restart: %+v, without one: %+v", got, want)
	}
}

func TestRestoreKeepsPendingTimers(t *testing.T) {
	const rule = `
  - {name: slow, kind: threshold, match: {metric: height}, window: 1m, agg: max, op: ">", threshold: 1, severity: warning, for: 10m}`
	ref, _ := newEngine(t, rule)
	var want []Alert
	for m := 0; m < 15; m++ {
		ref.Windows(updates(paneRow("a", "x", "height", m, 2, true)))
		want = ref.Take(want)
	}
	if brief(want) != "11:firing/warning#1" {
		t.Fatalf("reference: %s", brief(want))
	}
	// Restart after minute 5: panes 0..5 come back from window_agg.
	e, _ := newEngine(t, rule)
	for m := 0; m <= 5; m++ {
		r := paneRow("a", "x", "height", m, 2, true)
		e.RestorePane(&r)
	}
	// The restored windows: source a final through minute 6.
	e.RestoreWindows([]window.Update{{Row: window.Row{Source: "a"}, Progress: true, DoneMs: base.Add(6 * time.Minute).UnixMilli()}})
	if got := e.Take(nil); len(got) != 0 {
		t.Fatalf("the warm-up published %s", brief(got))
	}
	var got []Alert
	for m := 6; m < 15; m++ {
		e.Windows(updates(paneRow("a", "x", "height", m, 2, true)))
		got = e.Take(got)
	}
	if brief(got) != brief(want) || got[0].ID != want[0].ID {
		t.Fatalf("after the restart %s, without one %s", brief(got), brief(want))
	}
}

// A sensor whose clock lags the city's by more than `after` is alive: it
// must neither alert nor flap; when it really stops, it alerts once.
func TestAbsenceWithALaggingClock(t *testing.T) {
	e, w := newEngine(t, `
  - {name: silent, kind: absence, match: {kind: environment}, after: 30m, severity: warning}`)
	send := func(source string, eventMin int) {
		ev := &event.Event{ID: "x", Kind: "environment", Type: "rainfall", Source: source, Area: "x",
			TimeMs: base.Add(time.Duration(eventMin) * time.Minute).UnixMilli(), MetricNames: []string{"precipitation"}, MetricValues: []float64{1}}
		e.Event(ev, w.t.UnixMilli())
	}
	var got []Alert
	for m := 40; m <= 120; m++ {
		w.t = base.Add(time.Duration(m) * time.Minute)
		send("on-time", m)
		if m <= 80 {
			send("lagging", m-40) // 40 minutes behind, every minute, until minute 80
		}
		e.Tick(w.t.UnixMilli())
		got = e.Take(got)
	}
	if b := brief(got); b != "110:firing/warning#1" || got[0].Source != "lagging" {
		t.Fatalf("got %s, want one alert when the lagging source stops (heard last at 80, +30m)", b)
	}
}

// TestScopeSeparatesPartitionWideGroups: in partitioned mode each engine
// sees only its partition's areas. A group keyed by area or source is whole
// in one partition and keeps its fingerprint; a group keyed by neither is
// partial in each, so each partition's engine must fire its own alert.
func TestScopeSeparatesPartitionWideGroups(t *testing.T) {
	const rules = `
  - name: high_anywhere
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 1m
    agg: max
    op: ">="
    levels: [{threshold: 1.0, severity: warning}]
    group_by: [%s]
`
	fire := func(scope, groupBy, area string) Alert {
		e := NewEngine(EngineConfig{Now: (&wall{base}).now, Scope: scope}, mustRules(t, fmt.Sprintf(rules, groupBy)))
		e.Windows(updates(paneRow("wl-"+area, area, "height", 0, 1.5, true)))
		got := e.Take(nil)
		if len(got) != 1 {
			t.Fatalf("scope %q group_by [%s]: %d transitions, want 1", scope, groupBy, len(got))
		}
		return got[0]
	}
	for _, tc := range []struct {
		groupBy string
		same    bool // one fingerprint whatever the scope
	}{
		{"area", true},
		{"source", true},
		{"area, type", true},
		{"type", false},
	} {
		a, b, none := fire("8/1", tc.groupBy, "kim-long"), fire("8/2", tc.groupBy, "kim-long"), fire("", tc.groupBy, "kim-long")
		if (a.Fingerprint == b.Fingerprint) != tc.same {
			t.Errorf("group_by [%s]: fingerprints in two scopes %s, %s; want equal=%v", tc.groupBy, a.Fingerprint, b.Fingerprint, tc.same)
		}
		if tc.same && a.Fingerprint != none.Fingerprint {
			t.Errorf("group_by [%s]: a scope changed the fingerprint of a whole group", tc.groupBy)
		}
	}
}

// TestHistoryFollowsTheDecisions: what a series keeps is bounded by the
// rules' window behind the last final decision, early panes included.
func TestHistoryFollowsTheDecisions(t *testing.T) {
	f := newFeeder(t, `
  - {name: r, kind: threshold, match: {metric: height}, window: 10m, agg: max, op: ">=", threshold: 5, severity: warning, early: true}`,
		2*time.Minute)
	for s := 0; s < 3*3600; s += 20 {
		f.event(waterEvent(fmt.Sprint(s), "a", "x", time.Duration(s)*time.Second, 1))
	}
	s := f.e.series[seriesKey{"environment", "water_level", "height", "x", "a"}]
	// 10 final panes behind the last decision, plus the ones the allowed
	// lateness keeps open (2 min) and the pane being filled.
	if n := len(s.panes); n > 10+3 {
		t.Fatalf("the series keeps %d panes", n)
	}
	for _, p := range s.panes[:10] {
		if !p.final {
			t.Fatalf("a pane behind the watermark is not final: %+v", p)
		}
	}
}

// TestOneSourceManyKeys: a source whose events change type and area (the
// Hue-S source reports every category in every area) feeds each key's
// rules, whichever key came last: the per-source cache in front of the
// key map must not hand one key's rules to another.
func TestOneSourceManyKeys(t *testing.T) {
	e, _ := newEngine(t, `
  - {name: urgent_flooding, kind: event, match: {kind: feedback, type: flooding, area: an-cuu}, when: ["attrs.priority == urgent"], severity: warning, resolve_after: 60m, group_by: [area]}
  - {name: urgent_lighting, kind: event, match: {kind: feedback, type: lighting}, when: ["attrs.priority == urgent"], severity: info, resolve_after: 60m, group_by: [area]}`)
	keys := []struct{ typ, area string }{{"flooding", "an-cuu"}, {"lighting", "an-cuu"}, {"flooding", "vy-da"}, {"lighting", "vy-da"}}
	fired := map[string]int{}
	for i := 0; i < 40; i++ {
		k := keys[(i*7)%len(keys)]
		ev := &event.Event{ID: fmt.Sprint(i), Kind: "feedback", Type: k.typ, Source: "hue-s", Area: k.area,
			TimeMs:   base.Add(time.Duration(i) * time.Second).UnixMilli(),
			AttrKeys: []string{"priority"}, AttrValues: []string{"urgent"}}
		e.Event(ev, ev.TimeMs)
		for _, a := range e.Take(nil) {
			fired[a.Rule+"/"+a.Area]++
		}
	}
	want := map[string]int{"urgent_flooding/an-cuu": 1, "urgent_lighting/an-cuu": 1, "urgent_lighting/vy-da": 1}
	if fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
}
