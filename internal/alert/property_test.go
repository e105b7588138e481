package alert

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// The property: threshold decisions are a function of the stream, not of
// its batching. Random series from several sources per group (gaps,
// out-of-order events, corrections of final panes) go through a real
// window.Set and the engine with random chunkings of the windows' log and
// random collects; every transition must equal what a brute-force
// evaluator computes from the raw events, and the transitions must be the
// same for every chunking.

const propRules = `
  - {name: avg2, kind: threshold, match: {metric: height}, window: 2m, agg: avg, op: "<=", threshold: 3, clear: 4, severity: warning, group_by: [source]}
  - name: sum3area
    kind: threshold
    match: {metric: height}
    window: 3m
    agg: sum
    op: ">="
    levels: [{threshold: 30, severity: info}, {threshold: 60, severity: warning}]
    group_by: [area]
  - {name: min5, kind: threshold, match: {metric: height}, window: 5m, agg: min, op: "<=", threshold: 1, severity: info, for: 2m, group_by: [source]}
  - name: max4early
    kind: threshold
    match: {metric: height}
    window: 4m
    agg: max
    op: ">="
    early: true
    levels: [{threshold: 8, severity: info}, {threshold: 9.5, severity: critical}]
    clear: 7
    group_by: [area]
  - {name: last2, kind: threshold, match: {metric: height}, window: 2m, agg: last, op: ">=", threshold: 9, severity: warning, group_by: [area]}
  - {name: count1, kind: threshold, match: {metric: height}, window: 1m, agg: count, op: ">=", threshold: 6, severity: info}
  - {name: rate60, kind: threshold, match: {metric: height}, window: 60m, agg: rate_per_hour, op: ">=", threshold: 4, clear: 1, severity: warning, group_by: [source]}
`

const (
	propPane     = int64(60_000)
	propLateness = int64(60_000)
)

type propEvent struct {
	id, source, area string
	tMs              int64
	v                float64
}

var propSources = []struct{ name, area string }{{"s0", "a0"}, {"s1", "a0"}, {"s2", "a0"}, {"s3", "a1"}, {"s4", "a1"}}

// genSeries makes each source's events in its own order: mostly forward
// in steps of 5–50 s, with gaps of minutes, and out-of-order events: within
// the allowed lateness, or (corrections) behind the watermark.
func genSeries(r *rand.Rand, corrections bool) [][]propEvent {
	base0 := base.UnixMilli()
	out := make([][]propEvent, len(propSources))
	for si, src := range propSources {
		t := base0 + r.Int63n(30_000)
		latest := t
		trend := r.Float64()*0.5 - 0.2
		level := float64(r.Intn(20)) / 4
		for i := 0; i < 30+r.Intn(30); i++ {
			switch x := r.Intn(20); {
			case x == 0:
				t = latest + int64(3+r.Intn(4))*60_000 // a silent stretch
			case x <= 2 && corrections:
				t = latest - propLateness - r.Int63n(150_000) // behind the watermark: a correction
			case x <= 4:
				t = latest - r.Int63n(50_000) // late, but inside the lateness
			default:
				t = latest + 5_000 + r.Int63n(45_000)
			}
			t = max(t, base0)
			latest = max(latest, t)
			level = math.Max(0, math.Min(10, level+trend+float64(r.Intn(9)-4)/4))
			out[si] = append(out[si], propEvent{id: fmt.Sprintf("%s-%d", src.name, i), source: src.name, area: src.area,
				tMs: t, v: math.Round(level*4) / 4})
		}
	}
	return out
}

// interleave merges the sources' sequences in a random order that keeps
// each source's own order. Every source is heard from before any other
// event: a group cannot wait for a source it has never heard of, so where
// a newcomer's first event falls would otherwise decide what it waits for.
func interleave(r *rand.Rand, series [][]propEvent) []propEvent {
	idx := make([]int, len(series))
	var out []propEvent
	for _, i := range r.Perm(len(series)) {
		out = append(out, series[i][0])
		idx[i] = 1
	}
	for {
		var open []int
		for i := range series {
			if idx[i] < len(series[i]) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			return out
		}
		i := open[r.Intn(len(open))]
		out = append(out, series[i][idx[i]])
		idx[i]++
	}
}

// propTransition is what both evaluators are compared on.
type propTransition struct {
	rule, group string
	status      Status
	severity    Severity
	evalMs      int64
	value       float64
}

func (t propTransition) String() string {
	return fmt.Sprintf("%s[%s] %s/%s@%d=%g", t.rule, t.group, t.status, t.severity,
		(t.evalMs-base.UnixMilli())/1000, t.value)
}

func propGroup(rule Rule, source, area string) string {
	var parts []string
	for _, f := range rule.GroupBy {
		switch f {
		case "source":
			parts = append(parts, source)
		case "area":
			parts = append(parts, area)
		}
	}
	return strings.Join(parts, ",")
}

// runEngine feeds the stream as the pipeline does, with the windows' log
// split into random chunks and collects at random points. With crash set,
// the process dies at a random event and starts again as iocd does: the
// windows from the events acknowledged by then, the alerts from the
// transitions published, the history from the rows written; the events
// after the ack floor come again.
func runEngine(t *testing.T, r *rand.Rand, rules []Rule, stream []propEvent, crash bool) []propTransition {
	t.Helper()
	newSet := func() *window.Set {
		set, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: time.Duration(propLateness) * time.Millisecond,
			IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	newEngine := func() *Engine { return NewEngine(EngineConfig{Now: func() time.Time { return base }}, rules) }
	toEvent := func(pe propEvent) *event.Event {
		return &event.Event{ID: pe.id, Kind: "environment", Type: "water_level", Source: pe.source, Area: pe.area,
			TimeMs: pe.tMs, MetricNames: []string{"height"}, MetricValues: []float64{pe.v}}
	}
	now := base.UnixMilli()
	set, e := newSet(), newEngine()
	var (
		published   []Alert
		written     = map[window.Row]window.Row{} // by key: the newest version, as window_agg FINAL
		latest      = make([]int64, len(stream))  // latestBefore of each event, as the events table keeps it
		checkpoints = []int{0}                    // events acknowledged after each collect
	)
	key := func(r window.Row) window.Row {
		return window.Row{StartMs: r.StartMs, SizeMs: r.SizeMs, Kind: r.Kind, Type: r.Type, Metric: r.Metric, Area: r.Area, Source: r.Source}
	}
	feed := func() {
		ups := set.TakeUpdates(nil)
		for len(ups) > 0 {
			n := 1 + r.Intn(len(ups))
			e.Windows(ups[:n])
			ups = ups[n:]
		}
		published = e.Take(published)
	}
	collect := func(nowMs int64, early bool, done int) {
		for _, row := range set.Collect(nil, nowMs, early) {
			written[key(row)] = row
		}
		feed()
		checkpoints = append(checkpoints, done)
	}
	crashAt := -1
	if crash {
		crashAt = len(stream)/4 + r.Intn(len(stream)/2)
	}
	for i := 0; i < len(stream); i++ {
		if i == crashAt {
			crashAt = -1
			floor := checkpoints[max(0, len(checkpoints)-1-r.Intn(2))]
			// iocd's order: the alerts, the windows from the acknowledged
			// events, the older history from the store, the windows' state.
			set, e = newSet(), newEngine()
			e.Restore(Latest(published))
			for j := 0; j < floor; j++ {
				ev := toEvent(stream[j])
				set.Restore(ev, latest[j], now)
				e.RestoreEvent(ev)
			}
			set.FinishRestore()
			for _, row := range written {
				if row.StartMs+row.SizeMs <= set.RestoredAfter(row.Source) {
					e.RestorePane(&row)
				}
			}
			e.RestoreWindows(set.TakeUpdates(nil))
			published = e.Take(published) // orphans, none here
			i = floor
		}
		ev := toEvent(stream[i])
		_, latest[i] = set.Add(ev, now)
		feed()
		e.Event(ev, now)
		published = e.Take(published)
		if r.Intn(4) == 0 {
			collect(now, r.Intn(2) == 0, i+1)
		}
	}
	collect(now+time.Hour.Milliseconds(), true, len(stream)) // every source idle: everything final
	var out []propTransition
	seen := map[string]bool{}
	for _, a := range published {
		if seen[a.MsgID()] {
			continue // published again after the restart: JetStream drops it by Nats-Msg-Id
		}
		seen[a.MsgID()] = true
		rule := rules[slices.IndexFunc(rules, func(x Rule) bool { return x.Name == a.Rule })]
		out = append(out, propTransition{a.Rule, propGroup(rule, a.Source, a.Area), a.Status, a.Severity, a.EvalTime.UnixMilli(), a.Value})
	}
	return out
}

// bruteGroup is the brute-force state of one group of one rule.
type bruteGroup struct {
	rule     Rule
	key      string
	sources  map[string]bool // heard from, so waited for
	members  map[string]bool // reported a pane the rule reads
	due      []int64
	decided  int64
	raisedMs int64
	tr       Tracker
}

// brute evaluates the rules from the raw events, replaying the stream with
// nothing but the definitions: a pane is final once its source's watermark
// (newest time − lateness) passes its end; a group's pane end is decided
// once every source heard from is final through it, over the events of
// the window stored by then; early rules evaluate at each event over
// everything stored so far and may only raise.
func brute(rules []Rule, stream []propEvent) []propTransition {
	latest := map[string]int64{}
	done := map[string]int64{}
	area := map[string]string{}
	final := map[string]map[int64]bool{} // source → pane start → final
	var groups []*bruteGroup
	byKey := map[string]*bruteGroup{}
	groupOf := func(rule Rule, source string) *bruteGroup {
		k := rule.Name + "/" + propGroup(rule, source, area[source])
		g := byKey[k]
		if g == nil {
			g = &bruteGroup{rule: rule, key: propGroup(rule, source, area[source]), sources: map[string]bool{},
				members: map[string]bool{}, decided: math.MinInt64, raisedMs: math.MinInt64}
			byKey[k] = g
			groups = append(groups, g)
		}
		return g
	}
	var out []propTransition
	stored := 0 // events stream[:stored] are in the windows

	value := func(g *bruteGroup, endMs int64) (float64, bool) {
		from := endMs - g.rule.Window.Milliseconds()
		var members []string
		for s := range g.members {
			members = append(members, s)
		}
		// The engine's member order: by key, here (area, source).
		sort.Slice(members, func(i, j int) bool {
			return area[members[i]]+"\x00"+members[i] < area[members[j]]+"\x00"+members[j]
		})
		var (
			count         uint64
			sum           float64
			lo, hi        = math.Inf(1), math.Inf(-1)
			last          float64
			lastEnd       = int64(math.MinInt64)
			rate          float64
			haveRate, any bool
		)
		for _, s := range members {
			type paneAgg struct {
				count         uint64
				sum, min, max float64
				last          float64
				lastMs        int64
				lastID        string
			}
			panes := map[int64]*paneAgg{}
			for _, pe := range stream[:stored] {
				start := window.Start(pe.tMs, propPane)
				if pe.source != s || start < from || start+propPane > endMs {
					continue
				}
				p := panes[start]
				if p == nil {
					p = &paneAgg{min: math.Inf(1), max: math.Inf(-1), lastMs: math.MinInt64}
					panes[start] = p
				}
				p.count++
				p.sum += pe.v
				p.min, p.max = math.Min(p.min, pe.v), math.Max(p.max, pe.v)
				if pe.tMs > p.lastMs || pe.tMs == p.lastMs && pe.id > p.lastID {
					p.last, p.lastMs, p.lastID = pe.v, pe.tMs, pe.id
				}
			}
			starts := make([]int64, 0, len(panes))
			for st := range panes {
				starts = append(starts, st)
			}
			slices.Sort(starts)
			var fit slope
			for _, st := range starts {
				p := panes[st]
				any = true
				count += p.count
				sum += p.sum
				lo, hi = math.Min(lo, p.min), math.Max(hi, p.max)
				if st+propPane > lastEnd {
					last, lastEnd = p.last, st+propPane
				}
				fit.add(float64(st-from), p.sum/float64(p.count))
			}
			if r, ok := fit.perHour(float64(endMs-from) / 2); ok && (!haveRate || r > rate) {
				rate, haveRate = r, true
			}
		}
		if !any {
			return 0, false
		}
		switch g.rule.Agg {
		case "count":
			return float64(count), true
		case "sum":
			return sum, true
		case "avg":
			return sum / float64(count), true
		case "min":
			return lo, true
		case "max":
			return hi, true
		case "last":
			return last, true
		}
		return rate, haveRate
	}
	observe := func(g *bruteGroup, endMs int64, final bool) {
		v, ok := value(g, endMs)
		if !ok {
			return
		}
		state, level := g.tr.state, g.tr.level
		tr, changed := g.tr.Observe(time.UnixMilli(endMs).UTC(), v, g.rule.Threshold, final && endMs >= g.raisedMs)
		if !final && (g.tr.state != state || g.tr.level > level) {
			g.raisedMs = max(g.raisedMs, endMs)
		}
		if changed {
			out = append(out, propTransition{g.rule.Name, g.key, tr.Status, tr.Severity, endMs, round(v)})
		}
	}
	decideReady := func() {
		for _, g := range groups {
			for len(g.due) > 0 {
				end := g.due[0]
				if end <= g.decided {
					g.due = g.due[1:]
					continue
				}
				for s := range g.sources {
					if done[s] < end {
						goto next
					}
				}
				g.due = g.due[1:]
				g.decided = end
				observe(g, end, true)
			}
		next:
		}
	}
	// finalPane marks a pane final and makes its end due for the groups.
	finalPane := func(s string, start int64) {
		final[s][start] = true
		for _, rule := range rules {
			g := groupOf(rule, s)
			g.members[s] = true
			g.sources[s] = true
			if end := start + propPane; end > g.decided {
				if i, found := slices.BinarySearch(g.due, end); !found {
					g.due = slices.Insert(g.due, i, end)
				}
			}
		}
	}
	for i, pe := range stream {
		s := pe.source
		if _, ok := latest[s]; !ok {
			latest[s], done[s], area[s], final[s] = math.MinInt64, math.MinInt64, pe.area, map[int64]bool{}
		}
		latest[s] = max(latest[s], pe.tMs)
		wm := latest[s] - propLateness
		var closing []int64
		for _, prev := range stream[:stored] {
			st := window.Start(prev.tMs, propPane)
			if prev.source == s && !final[s][st] && st+propPane <= wm && !slices.Contains(closing, st) {
				closing = append(closing, st)
			}
		}
		slices.Sort(closing)
		for _, st := range closing {
			finalPane(s, st)
		}
		done[s] = max(done[s], window.Start(wm, propPane))
		decideReady()
		start := window.Start(pe.tMs, propPane)
		stored = i + 1
		if start+propPane <= wm && !final[s][start] {
			finalPane(s, start) // a pane behind the watermark is final at once
			decideReady()
		}
		// The event itself: its source joins the groups of the rules it
		// feeds, and early rules look at what is stored now.
		for _, rule := range rules {
			g := groupOf(rule, s)
			g.sources[s] = true
			if rule.Early && start+propPane > done[s] {
				g.members[s] = true
				if end := start + propPane; end > g.decided {
					observe(g, end, false)
				}
			}
		}
	}
	for s := range done {
		done[s] = math.MaxInt64 // idle: everything final
		for _, pe := range stream {
			if st := window.Start(pe.tMs, propPane); pe.source == s && !final[s][st] {
				finalPane(s, st)
			}
		}
	}
	decideReady()
	return out
}

// byGroup splits transitions per (rule, group), keeping their order: the
// order across groups is not part of the property.
func byGroup(ts []propTransition) map[string][]propTransition {
	out := map[string][]propTransition{}
	for _, t := range ts {
		out[t.rule+"/"+t.group] = append(out[t.rule+"/"+t.group], t)
	}
	return out
}

func sameTransitions(a, b []propTransition) string {
	ga, gb := byGroup(a), byGroup(b)
	keys := map[string]bool{}
	for k := range ga {
		keys[k] = true
	}
	for k := range gb {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		x, y := ga[k], gb[k]
		for i := 0; i < max(len(x), len(y)); i++ {
			switch {
			case i >= len(x):
				diffs = append(diffs, fmt.Sprintf("only in the second: %v", y[i]))
			case i >= len(y):
				diffs = append(diffs, fmt.Sprintf("only in the first: %v", x[i]))
			case x[i].status != y[i].status || x[i].severity != y[i].severity || x[i].evalMs != y[i].evalMs ||
				math.Abs(x[i].value-y[i].value) > 1e-9:
				diffs = append(diffs, fmt.Sprintf("%v vs %v", x[i], y[i]))
			default:
				continue
			}
			break
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

func TestThresholdDecisionsMatchBruteForce(t *testing.T) {
	rules := mustRules(t, propRules)
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	transitions := 0
	for seed := int64(1); seed <= int64(seeds); seed++ {
		r := rand.New(rand.NewSource(seed))
		corrections := seed%2 == 0
		series := genSeries(r, corrections)
		var first []propTransition
		for order := 0; order < 3; order++ {
			stream := interleave(r, series)
			want := brute(rules, stream)
			for chunking := 0; chunking < 4; chunking++ {
				crash := chunking >= 2
				got := runEngine(t, r, rules, stream, crash)
				want := want
				if crash && corrections {
					// A restart rebuilds a pending `for` timer by deciding the
					// history again as it is then: a correction that came
					// after a decision but before the restart counts in it.
					drop := func(t propTransition) bool { return t.rule == "min5" }
					want = slices.DeleteFunc(slices.Clone(want), drop)
					got = slices.DeleteFunc(got, drop)
				}
				if d := sameTransitions(want, got); d != "" {
					t.Fatalf("seed %d order %d chunking %d (crash %v): the engine (second) differs from the brute force (first):\n%s",
						seed, order, chunking, crash, d)
				}
			}
			// Without corrections the final content of every pane is known
			// before any decision reads it: the order in which the sources'
			// events interleave does not matter either, but to early rules,
			// which read the other sources' panes as they are at each event.
			if !corrections {
				want := slices.DeleteFunc(slices.Clone(want), func(t propTransition) bool { return t.rule == "max4early" })
				if order == 0 {
					first = want
				} else if d := sameTransitions(first, want); d != "" {
					t.Fatalf("seed %d: interleaving %d decides otherwise than interleaving 0:\n%s", seed, order, d)
				}
			}
			transitions += len(want)
		}
	}
	if transitions < 20*seeds {
		t.Fatalf("only %d transitions over %d seeds: the series do not exercise the rules", transitions, seeds)
	}
	t.Logf("%d transitions compared", transitions)
}
