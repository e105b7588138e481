package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iocstream/iocstream/internal/event"
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
	// PaneMs is the size of the panes threshold rules evaluate (the
	// smallest window size); default 1 minute.
	PaneMs int64
	// Scope names the share of the city this engine sees (a partition, in
	// partitioned mode). It is part of the fingerprint of groups keyed by
	// neither area nor source: each partition computes such a group over
	// its own areas only, and two partitions must not fire one alert.
	Scope string
	// Silences, when set, marks each transition with the silences that
	// match it when decided (silencedBy); it changes no decision.
	Silences Silencer
}

// Engine evaluates the rules over events and window panes and produces
// alert transitions. All methods but SetRules and Act belong to one
// goroutine (the pipeline's): the engine needs no locks on its hot path.
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
	acts    []pendingAction // set by Act, applied by the owner goroutine

	rules   []*ruleState
	series  map[seriesKey]*seriesEntry
	byEvent map[eventKey]*keyRules // what each event key feeds, cached
	// The last key of each source, looked up first: a source almost
	// always has one key, and a map keyed by one string is cheaper than
	// by four.
	bySource  map[string]*keyRules
	firingEvt map[*group]*ruleState // firing event rules, checked on Tick

	maxEventMs int64 // engine clock: newest event time seen
	wallAtMax  int64 // wall time when maxEventMs last moved

	// Per source: how far its panes are final (window.Update progress).
	progress map[string]*progress
	touched  map[*seriesEntry]struct{} // scratch of Windows

	out []Alert
}

type seriesKey struct{ kind, typ, metric, area, source string }

type eventKey struct{ kind, typ, area, source string }

// keyRules is what an event of one key feeds: the event and absence rules
// that select it, and whether an early threshold rule evaluates its
// series on every event.
type keyRules struct {
	key    eventKey
	events []keyRule
	early  bool
}

// keyRule is an event or absence rule an event key feeds. For an absence
// rule, g is the key's group, found once: every event of the key updates
// it, and a city has thousands of keys.
type keyRule struct {
	rs *ruleState
	g  *group
}

// ruleState is a rule and the groups (fingerprints) it has seen.
type ruleState struct {
	Rule
	by     []string // Rule.groupBy, computed once
	scope  string   // EngineConfig.Scope
	groups map[groupKey]*group
}

func newRuleState(r Rule, groups map[groupKey]*group, scope string) *ruleState {
	rs := &ruleState{Rule: r, by: r.groupBy(), scope: scope, groups: groups}
	for _, g := range groups {
		g.rs = rs
	}
	return rs
}

// groupKey is the group_by values of a group ("" for fields not grouped).
type groupKey struct{ area, source, typ string }

// group is one fingerprint of a rule.
type group struct {
	rs                *ruleState
	fp                string
	kind, typ, metric string
	area, source      string
	tr                Tracker
	lastEvalMs        int64                     // the last decision (threshold: the last final pane end decided)
	members           map[*seriesEntry]struct{} // threshold rules
	ordered           []*seriesEntry            // threshold rules: the members in key order
	sources           map[*progress]struct{}    // threshold rules: whose progress a decision waits for
	due               []int64                   // threshold rules: pane ends to decide, ascending
	raisedMs          int64                     // threshold rules: the last pane end an early evaluation raised at
	lastMs            int64                     // event rules: last match; absence: engine clock when last heard
	value             float64
	lastSummary       string
	resolveWhy        string
	ops               operatorState
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
	if cfg.PaneMs <= 0 {
		cfg.PaneMs = time.Minute.Milliseconds()
	}
	e := &Engine{cfg: cfg, series: map[seriesKey]*seriesEntry{}, firingEvt: map[*group]*ruleState{},
		maxEventMs: math.MinInt64, progress: map[string]*progress{}, touched: map[*seriesEntry]struct{}{}}
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
			rs := newRuleState(r, prev.groups, e.cfg.Scope)
			for _, g := range rs.groups {
				g.tr.cancel()
				if r.Kind == KindThreshold {
					g.tr.clamp(len(r.Threshold.Levels))
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
			e.rules = append(e.rules, newRuleState(r, map[groupKey]*group{}, e.cfg.Scope))
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
			if g.tr.firing() {
				e.emitResolve(rs, g, max(clock, g.lastEvalMs), g.value, "quy tắc đã bị gỡ khỏi tệp quy tắc")
			}
		}
	}
	// Matching is cached per key; rebuild the caches, keeping pane history.
	e.byEvent = map[eventKey]*keyRules{}
	e.bySource = map[string]*keyRules{}
	for k, s := range e.series {
		s.rules, s.keepMs, s.early = nil, 0, false
		e.bindSeries(s)
		if len(s.rules) == 0 {
			delete(e.series, k)
		}
	}
	e.rebuildWaiters()
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
	acts := e.acts
	e.pending, e.swap, e.acts = nil, false, nil
	e.mu.Unlock()
	if swap {
		e.install(rules)
	}
	for _, a := range acts {
		e.act(a)
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
	k, kr := e.eventRules(ev)
	for _, r := range kr.events {
		switch r.rs.Kind {
		case KindAbsence:
			e.seen(r.rs, r.g, e.clock(nowMs))
		case KindEvent:
			e.match(r.rs, k, ev)
		}
	}
	if kr.early {
		e.earlyEvent(k, ev)
	}
}

// eventRules returns what an event's key feeds, cached per key. On first
// sight of a key its source joins the groups of the threshold rules that
// select it (whatever the metric): their decisions wait for its progress.
func (e *Engine) eventRules(ev *event.Event) (eventKey, *keyRules) {
	if kr := e.bySource[ev.Source]; kr != nil && kr.key.kind == ev.Kind && kr.key.typ == ev.Type && kr.key.area == ev.Area {
		return kr.key, kr
	}
	if kr, ok := e.byEvent[eventKey{ev.Kind, ev.Type, ev.Area, ev.Source}]; ok {
		e.bySource[kr.key.source] = kr
		return kr.key, kr
	}
	// Copies: the event's strings are substrings of its subject, which
	// the cache would keep alive.
	k := eventKey{strings.Clone(ev.Kind), strings.Clone(ev.Type), strings.Clone(ev.Area), strings.Clone(ev.Source)}
	kr := &keyRules{key: k}
	for _, rs := range e.rules {
		if !rs.Match.selects(k.kind, k.typ, "", k.area, k.source) {
			continue
		}
		if rs.Kind != KindThreshold {
			r := keyRule{rs: rs}
			if rs.Kind == KindAbsence {
				r.g = rs.group(seriesKey{k.kind, k.typ, "", k.area, k.source})
			}
			kr.events = append(kr.events, r)
			continue
		}
		kr.early = kr.early || rs.Early
		rs.group(seriesKey{k.kind, k.typ, "", k.area, k.source}).watch(e.progressOf(k.source))
	}
	e.byEvent[k] = kr
	e.bySource[k.source] = kr
	return k, kr
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
	e.resolveQuiet(clock)
	for _, rs := range e.rules {
		if rs.Kind == KindAbsence {
			e.fireSilent(rs, clock)
		}
	}
	// Sort transitions of one Tick by time so subscribers see them in order.
	sort.SliceStable(e.out, func(i, j int) bool { return e.out[i].EvalTime.Before(e.out[j].EvalTime) })
}

// Take appends the transitions produced since the last Take to dst.
func (e *Engine) Take(dst []Alert) []Alert {
	dst = append(dst, e.out...)
	clear(e.out)
	e.out = e.out[:0]
	return dst
}

// group returns the group of a series under a rule's group_by, creating it.
func (rs *ruleState) group(k seriesKey) *group {
	var area, source, typ string
	for _, f := range rs.by {
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
	g := &group{rs: rs, fp: fp, kind: k.kind, typ: k.typ, metric: k.metric, area: k.area, source: k.source,
		lastEvalMs: math.MinInt64, lastMs: math.MinInt64, raisedMs: math.MinInt64}
	g.tr.Fingerprint = fp
	rs.groups[key] = g
	return g
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
