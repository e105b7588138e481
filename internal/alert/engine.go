package alert

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// EngineConfig tunes an Engine.
type EngineConfig struct {
	// Location is where active_hours are read; default Asia/Ho_Chi_Minh.
	Location *time.Location
	// IdleAdvance: when no newer event time arrives for this long (wall
	// clock), the engine clock follows the wall clock from there, so a city
	// gone quiet still resolves event alerts and notices silent sources.
	// Default 1 minute.
	IdleAdvance time.Duration
	// AreaNames maps an area slug to its name for {{area_name}}.
	AreaNames map[string]string
	// Now is the wall clock (updatedAt, idle advance); default time.Now.
	Now func() time.Time
	// Scope names the share of the city this engine sees (a partition, in
	// partitioned mode). It is part of the fingerprint of groups keyed by
	// neither area nor source: each partition computes such a group over
	// its own areas only, and two partitions must not fire one alert.
	Scope string
}

// Engine evaluates the rules over events and window panes and produces
// alert transitions. All methods but SetRules belong to one goroutine (the
// pipeline's): the engine needs no locks on its hot path.
//
// Time inside the engine is event time: threshold rules are evaluated at
// pane ends, event rules at event times, and resolve_after and absence
// against the engine clock (the newest event time seen, see IdleAdvance).
// A replay of the same events gives the same transitions with the same
// ids, which is what makes a restart safe.
type Engine struct {
	cfg EngineConfig

	mu      sync.Mutex
	pending []Rule // set by SetRules, applied by the owner goroutine
	swap    bool
	acks    []ack // set by Acknowledge, applied by the owner goroutine

	rules     []*ruleState
	series    map[seriesKey]*seriesEntry
	byEvent   map[eventKey][]*ruleState // event and absence rules per event key
	firingEvt map[*group]*ruleState     // firing event rules, checked on Tick

	maxEventMs int64 // engine clock: newest event time seen
	wallAtMax  int64 // wall time when maxEventMs last moved

	// Scratch of Windows, kept between calls.
	dues    []due
	dueAt   map[dueKey]int
	touched map[*seriesEntry]struct{}

	out []Alert
}

type seriesKey struct{ kind, typ, metric, area, source string }

type eventKey struct{ kind, typ, area, source string }

// seriesEntry is one window series and the threshold rules that use it.
type seriesEntry struct {
	key    seriesKey
	panes  []pane // by start; only kept when a rule uses the series
	keepMs int64
	rules  []*ruleState
	// Running totals through each pane (cum[i] covers panes[0..i] and
	// everything trimmed before them), so a 24-hour sum is a subtraction,
	// not a walk over 1 440 panes at every evaluation.
	cum  []total
	base total // what was trimmed
}

type total struct {
	count uint64
	sum   float64
}

type pane struct {
	startMs, endMs             int64
	count                      uint64
	sum, min, max, first, last float64
	final                      bool
}

// ruleState is a rule and the groups (fingerprints) it has seen.
type ruleState struct {
	Rule
	scope  string // EngineConfig.Scope
	groups map[groupKey]*group
}

// groupKey is the group_by values of a group ("" for fields not grouped).
type groupKey struct{ area, source, typ string }

// group is one fingerprint of a rule.
type group struct {
	fp                string
	kind, typ, metric string
	area, source      string
	tr                Tracker
	lastEvalMs        int64
	members           map[*seriesEntry]struct{} // threshold rules
	lastMs            int64                     // event rules: last match; absence: engine clock when last heard
	value             float64
	lastSummary       string
	resolveWhy        string
	ackBy, ackComment string
	ackAt             time.Time
	firingThreshold   float64
}

// NewEngine returns an engine running rules.
func NewEngine(cfg EngineConfig, rules []Rule) *Engine {
	if cfg.Location == nil {
		cfg.Location = HoChiMinh()
	}
	if cfg.IdleAdvance <= 0 {
		cfg.IdleAdvance = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{cfg: cfg, series: map[seriesKey]*seriesEntry{}, firingEvt: map[*group]*ruleState{},
		maxEventMs: math.MinInt64, dueAt: map[dueKey]int{}, touched: map[*seriesEntry]struct{}{}}
	e.install(rules)
	return e
}

// HoChiMinh is Asia/Ho_Chi_Minh, or UTC+7 (Vietnam has no daylight saving
// time) on a machine without time zone data.
func HoChiMinh() *time.Location {
	if loc, err := time.LoadLocation("Asia/Ho_Chi_Minh"); err == nil {
		return loc
	}
	return time.FixedZone("ICT", 7*3600)
}

// SetRules hands a new rule set to the engine; it takes effect at the next
// Tick. Safe to call from any goroutine (the reloader's).
func (e *Engine) SetRules(rules []Rule) {
	e.mu.Lock()
	e.pending, e.swap = rules, true
	e.mu.Unlock()
}

// Rules returns the names of the rules running.
func (e *Engine) Rules() []string {
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = r.Name
	}
	return names
}

// install replaces the rule set. An unchanged rule keeps its state
// (pending timers, firing alerts); a changed rule keeps its firing alerts
// (same fingerprint, same id) and lets the next evaluation decide; a
// removed rule resolves its firing alerts, which would otherwise stay
// firing downstream for ever.
func (e *Engine) install(rules []Rule) {
	old := map[string]*ruleState{}
	for _, rs := range e.rules {
		old[rs.Name] = rs
	}
	e.rules = e.rules[:0:0]
	for _, r := range rules {
		prev := old[r.Name]
		delete(old, r.Name)
		switch {
		case prev != nil && sameRule(prev.Rule, r):
			prev.Rule = r
			e.rules = append(e.rules, prev)
		case prev != nil && prev.Kind == r.Kind && slices.Equal(prev.GroupBy, r.GroupBy):
			// Same fingerprints: the alerts carry over.
			rs := &ruleState{Rule: r, groups: prev.groups, scope: e.cfg.Scope}
			for _, g := range rs.groups {
				if g.tr.state == Pending {
					g.tr.state = Inactive
				}
				if r.Kind == KindThreshold && g.tr.level >= len(r.Threshold.Levels) {
					g.tr.level = len(r.Threshold.Levels) - 1
				}
				if r.Kind == KindEvent {
					if _, ok := e.firingEvt[g]; ok {
						e.firingEvt[g] = rs
					}
				}
			}
			e.rules = append(e.rules, rs)
		default:
			if prev != nil {
				old[r.Name] = prev // other fingerprints: resolve the old alerts
			}
			e.rules = append(e.rules, &ruleState{Rule: r, groups: map[groupKey]*group{}, scope: e.cfg.Scope})
		}
	}
	wallMs := e.cfg.Now().UnixMilli()
	clock := e.clock(wallMs)
	if clock == math.MinInt64 {
		clock = wallMs
	}
	for _, rs := range old {
		for _, g := range rs.groups {
			delete(e.firingEvt, g)
			if g.tr.state == Firing {
				e.emitResolve(rs, g, max(clock, g.lastEvalMs), g.value, "quy tắc đã bị gỡ khỏi tệp quy tắc")
			}
		}
	}
	// Matching is cached per key; rebuild the caches, keeping pane history.
	e.byEvent = map[eventKey][]*ruleState{}
	for k, s := range e.series {
		s.rules, s.keepMs = nil, 0
		e.bindSeries(s)
		if len(s.rules) == 0 {
			delete(e.series, k)
		}
	}
}

func sameRule(a, b Rule) bool {
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// applyPending installs rules handed over by SetRules and applies
// acknowledgements.
func (e *Engine) applyPending() {
	e.mu.Lock()
	rules, swap := e.pending, e.swap
	acks := e.acks
	e.pending, e.swap, e.acks = nil, false, nil
	e.mu.Unlock()
	if swap {
		e.install(rules)
	}
	for _, a := range acks {
		e.acknowledge(a)
	}
}

// ack is an operator's acknowledgement waiting for the owner goroutine.
type ack struct {
	fingerprint, by, comment string
	at                       time.Time
}

// Acknowledge records that an operator has seen a firing alert; it takes
// effect (a transition of the same id carrying who and when) at the next
// evaluation, within 100 ms in iocd. An alert that is not firing then is
// left alone. Safe to call from any goroutine (the HTTP API's).
func (e *Engine) Acknowledge(fingerprint, by, comment string) {
	e.mu.Lock()
	e.acks = append(e.acks, ack{fingerprint, by, comment, e.cfg.Now().UTC()})
	e.mu.Unlock()
}

func (e *Engine) acknowledge(a ack) {
	for _, rs := range e.rules {
		for _, g := range rs.groups {
			if g.fp != a.fingerprint {
				continue
			}
			if g.tr.state != Firing || g.ackBy == a.by && g.ackComment == a.comment {
				return
			}
			g.ackBy, g.ackComment, g.ackAt = a.by, a.comment, a.at
			g.tr.seq++
			// Not a new decision on the data: the evaluation time stays.
			e.emit(rs, g, StatusFiring, g.lastEvalMs, g.value, g.firingThreshold)
			return
		}
	}
}

// clock is the engine's event-time clock at wall time wallMs.
func (e *Engine) clock(wallMs int64) int64 {
	if e.maxEventMs == math.MinInt64 {
		return math.MinInt64
	}
	c := e.maxEventMs
	if idle := wallMs - e.wallAtMax - e.cfg.IdleAdvance.Milliseconds(); idle > 0 {
		c += idle
	}
	return c
}

// Event feeds one accepted, non-duplicate event: event rules fire on it,
// absence rules note its source. nowMs is the wall clock.
func (e *Engine) Event(ev *event.Event, nowMs int64) {
	t := min(ev.TimeMs, nowMs) // a source's fast clock must not run the engine's
	if t > e.maxEventMs {
		e.maxEventMs, e.wallAtMax = t, nowMs
	}
	k, rules := e.eventRules(ev)
	for _, rs := range rules {
		switch rs.Kind {
		case KindAbsence:
			e.seen(rs, k, e.clock(nowMs))
		case KindEvent:
			e.match(rs, k, ev)
		}
	}
}

// eventRules returns the event and absence rules that select an event's
// key, cached per key.
func (e *Engine) eventRules(ev *event.Event) (eventKey, []*ruleState) {
	k := eventKey{ev.Kind, ev.Type, ev.Area, ev.Source}
	if rules, ok := e.byEvent[k]; ok {
		return k, rules
	}
	// The event's strings may point into a reused buffer.
	k = eventKey{strings.Clone(ev.Kind), strings.Clone(ev.Type), strings.Clone(ev.Area), strings.Clone(ev.Source)}
	var rules []*ruleState
	for _, rs := range e.rules {
		if rs.Kind != KindThreshold && rs.Match.selects(k.kind, k.typ, "", k.area, k.source) {
			rules = append(rules, rs)
		}
	}
	e.byEvent[k] = rules
	return k, rules
}

// RestoreEvent feeds an event read back from the events table at start-up.
// Absence rules learn when each source was last seen, and a firing event
// alert learns its last match, so that resolve_after counts from the right
// moment. Nothing fires or resolves here.
func (e *Engine) RestoreEvent(ev *event.Event) {
	nowMs := e.cfg.Now().UnixMilli()
	if t := min(ev.TimeMs, nowMs); t > e.maxEventMs {
		e.maxEventMs, e.wallAtMax = t, nowMs
	}
	k, rules := e.eventRules(ev)
	for _, rs := range rules {
		switch rs.Kind {
		case KindAbsence:
			g := rs.group(seriesKey{k.kind, k.typ, "", k.area, k.source}, []string{"source"})
			g.lastMs = max(g.lastMs, ev.TimeMs)
		case KindEvent:
			value, metric, ok := rs.matches(ev)
			if !ok {
				continue
			}
			g := rs.group(seriesKey{k.kind, k.typ, metric, k.area, k.source}, groupOr(rs.GroupBy, "source"))
			if g.tr.state == Firing && ev.TimeMs >= g.tr.startsAt.UnixMilli() && ev.TimeMs > g.lastMs {
				g.lastMs, g.value = ev.TimeMs, value
			}
		}
	}
}

// seen records that a source was heard from, at engine clock heard, for
// an absence rule, resolving the alert of a source that was silent.
// Silence is measured on the engine clock from when the source was last
// heard, not from its own event times: a sensor whose clock lags the
// city's by more than `after` is alive, and must neither alert nor flap.
func (e *Engine) seen(rs *ruleState, k eventKey, heard int64) {
	g := rs.group(seriesKey{k.kind, k.typ, "", k.area, k.source}, []string{"source"})
	if heard <= g.lastMs {
		return
	}
	g.lastMs = heard
	if g.tr.state == Firing && heard >= g.lastEvalMs {
		g.lastEvalMs = heard
		e.emitResolve(rs, g, heard, 0, "đã nhận lại dữ liệu")
	}
}

// match fires or extends an event rule.
func (e *Engine) match(rs *ruleState, k eventKey, ev *event.Event) {
	value, metric, ok := rs.matches(ev)
	if !ok {
		return
	}
	g := rs.group(seriesKey{k.kind, k.typ, metric, k.area, k.source}, groupOr(rs.GroupBy, "source"))
	if g.tr.state == Firing {
		// A repeated match updates the episode; it is not a new alert.
		g.lastMs = max(g.lastMs, ev.TimeMs)
		g.value = value
		return
	}
	if ev.TimeMs <= g.lastEvalMs {
		return // replayed after a restart: this episode is already told
	}
	g.kind, g.typ, g.metric, g.area, g.source = k.kind, k.typ, metric, k.area, k.source
	g.lastMs, g.lastEvalMs, g.value = ev.TimeMs, ev.TimeMs, value
	e.firingEvt[g] = rs
	at := time.UnixMilli(ev.TimeMs).UTC()
	g.tr.state, g.tr.level, g.tr.seq, g.tr.startsAt = Firing, 0, 1, at
	g.tr.id = alertID(g.fp, at)
	e.emit(rs, g, StatusFiring, ev.TimeMs, value, 0)
}

// matches reports whether an event meets every condition of an event rule,
// with the value the alert shows: the first condition's metric, or the
// first metric the rule's match selects.
func (rs *ruleState) matches(ev *event.Event) (float64, string, bool) {
	value, metric, have := 0.0, "", false
	for i, name := range ev.MetricNames {
		if len(rs.Match.Metric) == 0 || anyGlob(rs.Match.Metric, name) {
			value, metric, have = ev.MetricValues[i], name, true
			break
		}
	}
	if len(rs.Match.Metric) > 0 && !have {
		return 0, "", false
	}
	for i, c := range rs.When {
		v, num, ok := c.lookup(ev)
		if !ok || !c.holds(v, num) {
			return 0, "", false
		}
		if i == 0 && num {
			value, metric = v.num, c.Field
		}
	}
	return value, metric, true
}

type operand struct {
	num float64
	str string
}

// lookup finds a condition's field in an event: a metric (numeric) or
// attrs.<key> (a string, compared as a number when both sides are).
func (c Condition) lookup(ev *event.Event) (operand, bool, bool) {
	if key, ok := strings.CutPrefix(c.Field, "attrs."); ok {
		for i, k := range ev.AttrKeys {
			if k == key {
				s := ev.AttrValues[i]
				if f, err := strconv.ParseFloat(s, 64); err == nil {
					return operand{num: f, str: s}, true, true
				}
				return operand{str: s}, false, true
			}
		}
		return operand{}, false, false
	}
	for i, name := range ev.MetricNames {
		if name == c.Field {
			return operand{num: ev.MetricValues[i]}, true, true
		}
	}
	return operand{}, false, false
}

func (c Condition) holds(v operand, num bool) bool {
	if want, err := strconv.ParseFloat(c.Value, 64); err == nil && num {
		switch c.Op {
		case "==":
			return v.num == want
		case "!=":
			return v.num != want
		default:
			return Op(c.Op).Holds(v.num, want)
		}
	}
	switch c.Op {
	case "==":
		return v.str == c.Value
	case "!=":
		return v.str != c.Value
	}
	return false // an order comparison needs numbers on both sides
}

// Windows feeds window rows (1-minute panes and derived rows such as the
// hourly vn_aqi): threshold rules evaluate when a pane is final, or on a
// partial pane when the rule is early.
func (e *Engine) Windows(rows []window.Row) {
	e.applyPending()
	// Every pane end is evaluated, in time order, after all rows of the
	// call are in: a backlog delivers many panes per call and must climb
	// the same ladder as live traffic, and several sources of one group
	// final at the same end give one decision.
	clear(e.dueAt)
	e.dues = e.dues[:0]
	clear(e.touched)
	for i := range rows {
		r := &rows[i]
		k := seriesKey{r.Kind, r.Type, r.Metric, r.Area, r.Source}
		s := e.seriesOf(k)
		if len(s.rules) == 0 {
			continue
		}
		end := r.StartMs + r.SizeMs
		s.put(paneOf(r))
		e.touched[s] = struct{}{}
		for _, rs := range s.rules {
			if !r.Final && !rs.Early {
				continue
			}
			g := rs.member(s)
			dk := dueKey{g, end}
			if at, ok := e.dueAt[dk]; ok {
				e.dues[at].final = e.dues[at].final && r.Final // a partial pane at the same end: not a final decision
				continue
			}
			e.dueAt[dk] = len(e.dues)
			e.dues = append(e.dues, due{dk, rs, r.Final})
		}
	}
	slices.SortStableFunc(e.dues, func(a, b due) int { return cmp.Compare(a.endMs, b.endMs) })
	for _, d := range e.dues {
		e.evaluate(d.rs, d.g, d.endMs, d.final)
	}
	// Trimmed only now: the older panes were needed by the evaluations.
	for s := range e.touched {
		s.trim()
	}
}

// dueKey is one evaluation a Windows call owes: a group at a pane end.
type dueKey struct {
	g     *group
	endMs int64
}

type due struct {
	dueKey
	rs    *ruleState
	final bool
}

// RestorePane puts a stored window row back into the rules' history
// without evaluating it: at start-up a 24-hour rule must not begin with an
// empty window.
func (e *Engine) RestorePane(r *window.Row) {
	s := e.seriesOf(seriesKey{r.Kind, r.Type, r.Metric, r.Area, r.Source})
	if len(s.rules) == 0 {
		return
	}
	s.put(paneOf(r))
	s.trim()
	for _, rs := range s.rules {
		rs.member(s)
	}
}

// WarmUp rebuilds the pending `for` timers of threshold rules from the
// restored pane history (call it after Restore and RestorePane): the
// history is evaluated again, in order, with nothing published, and a
// group that ends up pending keeps its timer. Without it a restart would
// restart every `for`, delaying alerts by up to that long.
func (e *Engine) WarmUp() {
	for _, rs := range e.rules {
		if rs.Kind != KindThreshold || rs.Threshold.For == 0 {
			continue
		}
		for _, g := range rs.groups {
			if g.tr.state != Inactive || len(g.members) == 0 {
				continue
			}
			var ends []int64
			for s := range g.members {
				for _, p := range s.panes {
					ends = append(ends, p.endMs)
				}
			}
			slices.Sort(ends)
			ends = slices.Compact(ends)
			saved, published := *g, len(e.out)
			for _, end := range ends {
				e.evaluate(rs, g, end, true)
			}
			clear(e.out[published:])
			e.out = e.out[:published]
			pending, since := g.tr.state == Pending, g.tr.since
			*g = saved
			if pending {
				g.tr.state, g.tr.since = Pending, since
			}
		}
	}
}

func paneOf(r *window.Row) pane {
	return pane{startMs: r.StartMs, endMs: r.StartMs + r.SizeMs, count: r.Count, sum: r.Sum, min: r.Min, max: r.Max,
		first: r.First, last: r.Last, final: r.Final}
}

// seriesOf returns the series of a window key, binding it to its rules on
// first sight.
func (e *Engine) seriesOf(k seriesKey) *seriesEntry {
	s, ok := e.series[k]
	if !ok {
		s = &seriesEntry{key: seriesKey{strings.Clone(k.kind), strings.Clone(k.typ), strings.Clone(k.metric),
			strings.Clone(k.area), strings.Clone(k.source)}}
		e.bindSeries(s)
		e.series[s.key] = s // kept even without rules: a negative cache
	}
	return s
}

// member returns the group of a series under a threshold rule, adding the
// series to it.
func (rs *ruleState) member(s *seriesEntry) *group {
	g := rs.group(s.key, rs.GroupBy)
	if g.members == nil {
		g.members = map[*seriesEntry]struct{}{}
	}
	g.members[s] = struct{}{}
	g.kind, g.typ, g.metric, g.area, g.source = s.key.kind, s.key.typ, s.key.metric, s.key.area, s.key.source
	return g
}

// bindSeries finds the threshold rules that use a series.
func (e *Engine) bindSeries(s *seriesEntry) {
	k := s.key
	for _, rs := range e.rules {
		if rs.Kind == KindThreshold && rs.Match.selects(k.kind, k.typ, k.metric, k.area, k.source) {
			s.rules = append(s.rules, rs)
			// window + for: a restart can rebuild a pending timer from it (WarmUp).
			s.keepMs = max(s.keepMs, (rs.Window + rs.Threshold.For).Milliseconds())
		}
	}
	if len(s.rules) == 0 {
		s.panes = nil
	}
}

// put stores a pane, replacing an earlier version of the same pane.
func (s *seriesEntry) put(p pane) {
	i := sort.Search(len(s.panes), func(i int) bool { return s.panes[i].startMs >= p.startMs })
	switch {
	case i < len(s.panes) && s.panes[i].startMs == p.startMs:
		s.panes[i] = p
	case i == len(s.panes):
		s.panes = append(s.panes, p)
		s.cum = append(s.cum, total{})
	default:
		s.panes = append(s.panes, pane{})
		copy(s.panes[i+1:], s.panes[i:])
		s.panes[i] = p
		s.cum = append(s.cum, total{})
	}
	// Usually i is the last pane; a correction of an older one recounts
	// from there.
	for j := i; j < len(s.panes); j++ {
		prev := s.base
		if j > 0 {
			prev = s.cum[j-1]
		}
		s.cum[j] = total{prev.count + s.panes[j].count, prev.sum + s.panes[j].sum}
	}
}

// span returns the indexes [i, j) of the panes inside [fromMs, toMs).
func (s *seriesEntry) span(fromMs, toMs int64) (int, int) {
	i := sort.Search(len(s.panes), func(k int) bool { return s.panes[k].startMs >= fromMs })
	j := sort.Search(len(s.panes), func(k int) bool { return s.panes[k].endMs > toMs })
	return i, max(i, j)
}

// totals sums count and sum over panes[i:j].
func (s *seriesEntry) totals(i, j int) total {
	if i >= j {
		return total{}
	}
	before := s.base
	if i > 0 {
		before = s.cum[i-1]
	}
	return total{s.cum[j-1].count - before.count, s.cum[j-1].sum - before.sum}
}

// trim forgets panes older than any rule's window.
func (s *seriesEntry) trim() {
	if len(s.panes) == 0 {
		return
	}
	newest := s.panes[len(s.panes)-1].endMs
	drop := 0
	for drop < len(s.panes) && s.panes[drop].endMs <= newest-s.keepMs {
		drop++
	}
	if drop > 0 {
		s.base = s.cum[drop-1]
		s.panes = append(s.panes[:0], s.panes[drop:]...)
		s.cum = append(s.cum[:0], s.cum[drop:]...)
	}
}

// evaluate decides a threshold rule's group at pane end endMs.
func (e *Engine) evaluate(rs *ruleState, g *group, endMs int64, final bool) {
	if endMs < g.lastEvalMs {
		return // older than a decision already taken (a replay, a lagging member)
	}
	g.lastEvalMs = endMs
	at := time.UnixMilli(endMs).UTC()
	if rs.Active != nil && !rs.Active.contains(time.UnixMilli(endMs-1).In(e.cfg.Location)) {
		// Outside its hours the rule does not apply: a day limit does not
		// judge the night.
		switch g.tr.state {
		case Firing:
			e.emitResolve(rs, g, endMs, g.value, "ngoài khung giờ áp dụng "+rs.Active.String())
		case Pending:
			g.tr.state = Inactive
		}
		return
	}
	value, ok := aggregate(rs.Agg, rs.Threshold.Op, g.members, endMs-rs.Window.Milliseconds(), endMs)
	if !ok {
		return // no data is no evidence either way: hold the state
	}
	g.value = value
	wasFiring, level := g.tr.state == Firing, g.tr.level
	if t, ok := g.tr.Observe(at, value, rs.Threshold, final); ok {
		if wasFiring && t.Status == StatusFiring && g.tr.level > level {
			g.ackBy, g.ackComment = "", "" // worse than what was acknowledged
		}
		e.emit(rs, g, t.Status, endMs, value, t.Threshold)
	}
}

// aggregate computes agg over the panes of members in [fromMs, toMs).
func aggregate(agg string, op Op, members map[*seriesEntry]struct{}, fromMs, toMs int64) (float64, bool) {
	var (
		count              uint64
		sum                float64
		lo, hi             = math.Inf(1), math.Inf(-1)
		last               float64
		lastEnd            int64 = math.MinInt64
		rate               float64
		haveRate, haveData bool
	)
	for s := range members {
		from, to := s.span(fromMs, toMs)
		t := s.totals(from, to)
		if t.count == 0 {
			continue
		}
		haveData = true
		count += t.count
		sum += t.sum
		switch agg {
		case "count", "sum", "avg":
			continue // the totals are all it takes
		}
		var fit slope
		for i := from; i < to; i++ {
			p := &s.panes[i]
			if p.count == 0 {
				continue
			}
			lo, hi = math.Min(lo, p.min), math.Max(hi, p.max)
			if p.endMs > lastEnd {
				last, lastEnd = p.last, p.endMs
			}
			fit.add(float64(p.startMs-fromMs), p.sum/float64(p.count))
		}
		// A rate needs data across at least half the window: two readings a
		// minute apart turn ±1 cm of gauge noise into ±0.6 m/h.
		if r, ok := fit.perHour(float64(toMs-fromMs) / 2); ok {
			if !haveRate || op.rising() && r > rate || !op.rising() && r < rate {
				rate, haveRate = r, true
			}
		}
	}
	if !haveData {
		return 0, false
	}
	switch agg {
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
	case "rate_per_hour":
		return rate, haveRate
	}
	return 0, false
}

// slope fits a least-squares line through (time, value) points: the rate
// of change of a noisy series, from every pane rather than two end points.
type slope struct {
	n                        int
	minT, maxT               float64
	sumT, sumV, sumTT, sumTV float64
}

func (s *slope) add(t, v float64) {
	if s.n == 0 || t < s.minT {
		s.minT = t
	}
	if s.n == 0 || t > s.maxT {
		s.maxT = t
	}
	s.n++
	s.sumT += t
	s.sumV += v
	s.sumTT += t * t
	s.sumTV += t * v
}

// perHour is the slope per hour (t in milliseconds), if the points span at
// least minSpanMs.
func (s *slope) perHour(minSpanMs float64) (float64, bool) {
	if s.n < 2 || s.maxT-s.minT < minSpanMs {
		return 0, false
	}
	n := float64(s.n)
	den := n*s.sumTT - s.sumT*s.sumT
	if den == 0 {
		return 0, false
	}
	return (n*s.sumTV - s.sumT*s.sumV) / den * float64(time.Hour/time.Millisecond), true
}

// Tick advances the engine clock to wall time nowMs: applies a rule set
// handed over by SetRules, resolves event alerts whose resolve_after has
// passed and fires absence alerts. Transition times are derived from the
// data (last match + resolve_after, last event + after), not from when
// Tick runs, so they are the same in a replay.
func (e *Engine) Tick(nowMs int64) {
	e.applyPending()
	clock := e.clock(nowMs)
	if clock == math.MinInt64 {
		return
	}
	for g, rs := range e.firingEvt {
		if at := g.lastMs + rs.ResolveAfter.Milliseconds(); at <= clock {
			delete(e.firingEvt, g)
			g.lastEvalMs = at
			e.emitResolve(rs, g, at, g.value, "không có phát hiện mới trong "+formatDuration(rs.ResolveAfter))
		}
	}
	for _, rs := range e.rules {
		if rs.Kind != KindAbsence {
			continue
		}
		for _, g := range rs.groups {
			if g.lastMs == math.MinInt64 {
				continue
			}
			at := g.lastMs + rs.After.Milliseconds()
			if g.tr.state == Firing || at > clock || at <= g.lastEvalMs {
				continue
			}
			g.lastEvalMs = at
			start := time.UnixMilli(at).UTC()
			g.tr.state, g.tr.level, g.tr.seq, g.tr.startsAt = Firing, 0, 1, start
			g.tr.id = alertID(g.fp, start)
			e.emit(rs, g, StatusFiring, at, float64(at-g.lastMs)/1000, rs.After.Seconds())
		}
	}
	// Sort transitions of one Tick by time so subscribers see them in order.
	sort.SliceStable(e.out, func(i, j int) bool { return e.out[i].EvalTime.Before(e.out[j].EvalTime) })
}

// Restore continues the episodes read back from IOC_ALERTS after a
// restart: last holds the last transition of each fingerprint. Evaluations
// older than a transition are then skipped, so the replay of unacknowledged
// events neither repeats nor undoes it. A firing alert whose rule is gone
// is resolved.
func (e *Engine) Restore(last []Alert) {
	byName := map[string]*ruleState{}
	for _, rs := range e.rules {
		byName[rs.Name] = rs
	}
	for _, a := range last {
		rs := byName[a.Rule]
		var g *group
		if rs != nil {
			by := rs.GroupBy
			switch rs.Kind {
			case KindEvent:
				by = groupOr(by, "source")
			case KindAbsence:
				by = []string{"source"}
			}
			g = rs.group(seriesKey{a.Kind, a.Type, a.Metric, a.Area, a.Source}, by)
		}
		if g == nil || g.fp != a.Fingerprint {
			// The rule is gone or now groups differently.
			if a.Status == StatusFiring {
				e.out = append(e.out, e.orphanResolved(a))
			}
			continue
		}
		evalMs := a.EvalTime.UnixMilli()
		g.lastEvalMs = max(g.lastEvalMs, evalMs)
		g.kind, g.typ, g.metric, g.area, g.source = a.Kind, a.Type, a.Metric, a.Area, a.Source
		g.value, g.lastSummary, g.firingThreshold = a.Value, a.Summary, a.Threshold
		if a.Status == StatusFiring && a.AcknowledgedBy != "" && a.AcknowledgedAt != nil {
			g.ackBy, g.ackComment, g.ackAt = a.AcknowledgedBy, a.AckComment, *a.AcknowledgedAt
		}
		switch {
		case a.Status != StatusFiring:
			if rs.Kind == KindAbsence {
				g.lastMs = evalMs // the source spoke again
			}
		case rs.Kind == KindThreshold:
			level := 0
			for i, lv := range rs.Threshold.Levels {
				if lv.Severity == a.Severity {
					level = i
				}
			}
			g.tr.restoreFiring(a.ID, a.Seq, level, a.StartsAt)
		case rs.Kind == KindEvent:
			g.tr.restoreFiring(a.ID, a.Seq, 0, a.StartsAt)
			g.lastMs = max(g.lastMs, evalMs)
			e.firingEvt[g] = rs
		case rs.Kind == KindAbsence:
			g.tr.restoreFiring(a.ID, a.Seq, 0, a.StartsAt)
			g.lastMs = evalMs - rs.After.Milliseconds()
		}
	}
}

// orphanResolved ends an alert no rule owns any more.
func (e *Engine) orphanResolved(a Alert) Alert {
	now := e.cfg.Now().UTC()
	a.Seq++
	a.Status = StatusResolved
	a.EndsAt = &now
	a.UpdatedAt = now
	a.EvalTime = now
	a.Summary = "Đã kết thúc (quy tắc đã bị gỡ hoặc thay đổi): " + a.Summary
	return a
}

// Take appends the transitions produced since the last Take to dst.
func (e *Engine) Take(dst []Alert) []Alert {
	dst = append(dst, e.out...)
	clear(e.out)
	e.out = e.out[:0]
	return dst
}

// emitResolve ends a firing alert; why goes into the summary.
func (e *Engine) emitResolve(rs *ruleState, g *group, atMs int64, value float64, why string) {
	g.tr.seq++
	g.tr.state = Inactive
	g.resolveWhy = why
	e.emit(rs, g, StatusResolved, atMs, value, g.firingThreshold)
}

// emit renders the tracker's current transition as an alert.
func (e *Engine) emit(rs *ruleState, g *group, status Status, atMs int64, value, threshold float64) {
	sev := rs.Severity
	levelName := ""
	if rs.Kind == KindThreshold {
		lv := rs.Threshold.Levels[g.tr.level]
		sev, levelName = lv.Severity, lv.Name
		if status == StatusFiring {
			threshold = lv.Threshold
		}
	}
	if levelName == "" {
		levelName = severityName[sev]
	}
	at := time.UnixMilli(atMs).UTC()
	a := Alert{
		ID: g.tr.id, Seq: g.tr.seq, Fingerprint: g.fp, Rule: rs.Name, Status: status, Severity: sev,
		Category: rs.Category, SubCategory: rs.SubCategory,
		Kind: g.kind, Type: g.typ, Metric: g.metric, Area: g.area, Source: g.source,
		Value: round(value), Threshold: threshold, StartsAt: g.tr.startsAt, UpdatedAt: e.cfg.Now().UTC(),
		Labels: rs.Labels, EvalTime: at,
	}
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	if g.ackBy != "" {
		ackAt := g.ackAt
		a.AcknowledgedBy, a.AcknowledgedAt, a.AckComment = g.ackBy, &ackAt, g.ackComment
	}
	switch rs.Kind {
	case KindThreshold:
		a.Op, a.Agg, a.Window = string(rs.Threshold.Op), rs.Agg, formatDuration(rs.Window)
	case KindEvent:
		a.Window = formatDuration(rs.ResolveAfter)
	case KindAbsence:
		a.Op, a.Window = ">=", formatDuration(rs.After)
	}
	if status == StatusFiring {
		g.firingThreshold = threshold
		a.Summary = renderSummary(rs.Summary, &a, levelName, e.cfg.AreaNames)
		if a.Summary == "" {
			a.Summary = renderSummary(defaultSummary, &a, levelName, e.cfg.AreaNames)
		}
		g.lastSummary = a.Summary
	} else {
		a.EndsAt = &at
		why := g.resolveWhy
		if why == "" {
			why = "giá trị hiện tại " + formatValue(a.Value)
		}
		g.resolveWhy = ""
		a.Summary = "Đã kết thúc: " + g.lastSummary + "; " + why
		g.ackBy, g.ackComment = "", "" // the next episode starts unacknowledged
	}
	e.out = append(e.out, a)
}

const defaultSummary = "{{rule}}: {{metric}} {{value}} {{op}} {{threshold}} tại {{area}} ({{source}})"

var severityName = map[Severity]string{Info: "thông tin", Warning: "cảnh báo", Critical: "nguy hiểm"}

// group returns the group of a series under a rule's group_by, creating it.
func (rs *ruleState) group(k seriesKey, by []string) *group {
	var area, source, typ string
	for _, f := range by {
		switch f {
		case "area":
			area = k.area
		case "source":
			source = k.source
		case "type":
			typ = k.typ
		}
	}
	key := groupKey{area, source, typ}
	if g, ok := rs.groups[key]; ok {
		return g
	}
	fp := fingerprint(rs.Name, area, source, typ)
	if area == "" && source == "" && rs.scope != "" {
		fp = fingerprint(rs.Name+"\x00scope="+rs.scope, area, source, typ)
	}
	g := &group{fp: fp, kind: k.kind, typ: k.typ, metric: k.metric, area: k.area, source: k.source,
		lastEvalMs: math.MinInt64, lastMs: math.MinInt64}
	g.tr.Fingerprint = fp
	rs.groups[key] = g
	return g
}

func groupOr(by []string, def string) []string {
	if len(by) == 0 {
		return []string{def}
	}
	return by
}

// fingerprint is stable for (rule, group): a restart and a reload find the
// same alert.
func fingerprint(rule, area, source, typ string) string {
	h := sha256.Sum256([]byte(rule + "\x00area=" + area + "\x00source=" + source + "\x00type=" + typ))
	return hex.EncodeToString(h[:8])
}

// selects reports whether a match selects a key; metric "" means the key
// has no metric (event rules check metrics separately).
func (m Match) selects(kind, typ, metric, area, source string) bool {
	return anyGlob(m.Kind, kind) && anyGlob(m.Type, typ) && (metric == "" || anyGlob(m.Metric, metric)) &&
		anyGlob(m.Area, area) && anyGlob(m.Source, source)
}

func anyGlob(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func (h Hours) String() string {
	hm := func(d time.Duration) string {
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return hm(h.Start) + "-" + hm(h.End)
}

// contains reports whether local time t falls in the daily interval.
func (h Hours) contains(t time.Time) bool {
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if h.Start < h.End {
		return d >= h.Start && d < h.End
	}
	return d >= h.Start || d < h.End
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func formatValue(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// renderSummary fills a summary template's {{placeholders}}.
func renderSummary(tmpl string, a *Alert, level string, areaNames map[string]string) string {
	if tmpl == "" {
		return ""
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		name := strings.TrimSpace(tmpl[i+2 : i+j])
		b.WriteString(placeholder(name, a, level, areaNames))
		tmpl = tmpl[i+j+2:]
	}
}

// Placeholders a summary template may use.
var Placeholders = []string{"value", "threshold", "level", "severity", "rule", "kind", "type", "metric",
	"area", "area_name", "source", "window", "agg", "op"}

func placeholder(name string, a *Alert, level string, areaNames map[string]string) string {
	switch name {
	case "value":
		return formatValue(a.Value)
	case "threshold":
		return formatValue(a.Threshold)
	case "level":
		return level
	case "severity":
		return string(a.Severity)
	case "rule":
		return a.Rule
	case "kind":
		return a.Kind
	case "type":
		return a.Type
	case "metric":
		return a.Metric
	case "area":
		return a.Area
	case "area_name":
		if n, ok := areaNames[a.Area]; ok {
			return n
		}
		return a.Area
	case "source":
		return a.Source
	case "window":
		return a.Window
	case "agg":
		return a.Agg
	case "op":
		return a.Op
	}
	return "{{" + name + "}}"
}
