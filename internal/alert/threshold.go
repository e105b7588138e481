package alert

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// Threshold rules decide on final panes. The engine reads the windows' log
// (window.Update) in the order of the events that caused each entry, so a
// decision depends on the data and its order in the stream, never on how
// the stream was batched:
//
//   - a group's pane end T is due once a final pane of one of its members
//     ends at T;
//   - it is decided once every source of the group is final through T (its
//     watermark passed T, or it went idle), as Flink takes the minimum
//     watermark over several inputs; the value is the aggregate of the
//     final panes in [T − window, T);
//   - pane ends are decided in order, each once; a correction that comes
//     after a decision changes the history the next decisions read, not
//     the decision taken.
//
// Early rules also evaluate on every event, over the panes as they are at
// that event. A partial result may only raise (start pending, fire,
// escalate), and until the final decision at the end it raised at, no
// final decision lowers what it raised.

// progress is how far one source's panes are final.
type progress struct {
	doneMs int64    // every pane ending at or before it is final
	groups []*group // threshold groups that wait for this source
}

// seriesEntry is one window series and the threshold rules that use it.
type seriesEntry struct {
	key    seriesKey
	src    *progress
	panes  []pane // by start; only kept when a rule uses the series
	keepMs int64
	rules  []*ruleState
	early  bool // an early rule evaluates it on every event
}

type pane struct {
	startMs, endMs             int64
	count                      uint64
	sum, min, max, first, last float64
	final                      bool
}

func (e *Engine) progressOf(source string) *progress {
	p, ok := e.progress[source]
	if !ok {
		p = &progress{doneMs: math.MinInt64}
		e.progress[strings.Clone(source)] = p
	}
	return p
}

// watch makes a group's decisions wait for a source's progress.
func (g *group) watch(p *progress) {
	if g.sources == nil {
		g.sources = map[*progress]struct{}{}
	}
	if _, ok := g.sources[p]; !ok {
		g.sources[p] = struct{}{}
		p.groups = append(p.groups, g)
	}
}

// rebuildWaiters drops the groups of removed rules from the sources'
// lists after a reload.
func (e *Engine) rebuildWaiters() {
	for _, p := range e.progress {
		p.groups = p.groups[:0]
	}
	for _, rs := range e.rules {
		if rs.Kind != KindThreshold {
			continue
		}
		for _, g := range rs.groups {
			for p := range g.sources {
				p.groups = append(p.groups, g)
			}
		}
	}
}

// Windows feeds the windows' log: final panes (and derived rows such as
// the hourly vn_aqi), corrections and sources' progress, oldest first.
// Threshold rules decide the pane ends that become due, in order.
func (e *Engine) Windows(ups []window.Update) {
	e.applyPending()
	clear(e.touched)
	for i := range ups {
		u := &ups[i]
		if u.Progress {
			p := e.progressOf(u.Row.Source)
			p.doneMs = u.DoneMs
			e.wake(p)
			continue
		}
		if u.Row.Final {
			e.final(&u.Row)
		}
	}
	// Trimmed only now, once, for every series touched.
	for s := range e.touched {
		s.trim()
	}
}

// final records a final pane and decides what became due.
func (e *Engine) final(r *window.Row) {
	s := e.seriesOf(seriesKey{r.Kind, r.Type, r.Metric, r.Area, r.Source})
	if len(s.rules) == 0 {
		return
	}
	end := r.StartMs + r.SizeMs
	s.put(paneOf(r))
	e.touched[s] = struct{}{}
	for _, rs := range s.rules {
		g := rs.member(s)
		if end > g.lastEvalMs {
			g.addDue(end)
		}
	}
	// A final pane means its source is final through its end (whatever
	// finalised it), even before the progress entry that follows.
	if end > s.src.doneMs {
		s.src.doneMs = end
		e.wake(s.src)
	}
	for _, rs := range s.rules {
		e.decide(rs.member(s))
	}
}

// wake decides what a source's progress made ready.
func (e *Engine) wake(p *progress) {
	for _, g := range p.groups {
		e.decide(g)
	}
}

func (g *group) addDue(end int64) {
	i, found := slices.BinarySearch(g.due, end)
	if !found {
		g.due = slices.Insert(g.due, i, end)
	}
}

// decide evaluates a group's due pane ends, in order, while every source
// of the group is final through them.
func (e *Engine) decide(g *group) {
	for len(g.due) > 0 {
		end := g.due[0]
		if end > g.lastEvalMs && !g.ready(end) {
			return
		}
		g.due = g.due[1:]
		if end > g.lastEvalMs {
			e.evaluate(g.rs, g, end, true)
		}
	}
}

// ready reports whether every source of the group is final through endMs.
func (g *group) ready(endMs int64) bool {
	for p := range g.sources {
		if p.doneMs < endMs {
			return false
		}
	}
	return true
}

// earlyEvent adds an event to the open panes of the early rules' series
// and evaluates those rules over the panes as they are now.
func (e *Engine) earlyEvent(k eventKey, ev *event.Event) {
	start := window.Start(ev.TimeMs, e.cfg.PaneMs)
	end := start + e.cfg.PaneMs
	for i := -1; i < len(ev.MetricNames); i++ {
		metric, v := window.EventsMetric, 1.0
		if i >= 0 {
			metric, v = ev.MetricNames[i], ev.MetricValues[i]
		}
		s := e.seriesOf(seriesKey{k.kind, k.typ, metric, k.area, k.source})
		// A pane behind the source's progress is final: the windows'
		// log carries it (a correction included) before the event.
		if !s.early || end <= s.src.doneMs || !s.addPartial(start, end, v) {
			continue
		}
		for _, rs := range s.rules {
			g := rs.member(s)
			if rs.Early && end > g.lastEvalMs {
				e.evaluate(rs, g, end, false)
			}
		}
	}
}

// RestorePane puts a stored final window row back into the rules' history
// without evaluating it: at start-up a 24-hour rule must not begin with an
// empty window. Give it only the panes the restored windows do not hold
// (window.Set.RestoredAfter), and the derived rows; RestoreWindows brings
// the others as they were at the ack floor.
func (e *Engine) RestorePane(r *window.Row) {
	if !r.Final {
		return
	}
	s := e.seriesOf(seriesKey{r.Kind, r.Type, r.Metric, r.Area, r.Source})
	if len(s.rules) == 0 {
		return
	}
	s.put(paneOf(r))
	for _, rs := range s.rules {
		rs.member(s)
	}
}

// RestoreWindows completes a restart (after Restore, the restored events
// and RestorePane) with the restored windows' state, which
// window.Set.FinishRestore logs: the panes they hold, final or open, and
// each source's progress at the ack floor. A group's pane ends that every
// source of the group was final through were decided before the restart,
// in order; the later final ones are due again, as they were then. The
// pending `for` timers are rebuilt by deciding the history again, with
// nothing published: without that a restart would restart every `for`,
// delaying alerts by up to that long.
func (e *Engine) RestoreWindows(ups []window.Update) {
	e.applyPending()
	for i := range ups {
		u := &ups[i]
		if u.Progress {
			e.progressOf(u.Row.Source).doneMs = u.DoneMs
			continue
		}
		s := e.seriesOf(seriesKey{u.Row.Kind, u.Row.Type, u.Row.Metric, u.Row.Area, u.Row.Source})
		if len(s.rules) == 0 {
			continue
		}
		s.put(paneOf(&u.Row))
		for _, rs := range s.rules {
			rs.member(s)
		}
	}
	for _, rs := range e.rules {
		if rs.Kind != KindThreshold {
			continue
		}
		for _, g := range rs.groups {
			if len(g.sources) == 0 {
				continue
			}
			// Every source final through doneMs: the last pane end up to it
			// was the last one decided (a pane that comes later behind the
			// watermark, as a late event can make one, is decided then).
			doneMs := int64(math.MaxInt64)
			for p := range g.sources {
				doneMs = min(doneMs, p.doneMs)
			}
			decided := g.lastEvalMs
			for _, s := range g.ordered {
				for _, p := range s.panes {
					if p.final && p.endMs <= doneMs {
						decided = max(decided, p.endMs)
					}
				}
			}
			if rs.Threshold.For > 0 && g.tr.State() == Inactive {
				e.warmUp(rs, g, decided)
			}
			g.lastEvalMs = decided
			for _, s := range g.ordered {
				for _, p := range s.panes {
					if p.final && p.endMs > decided {
						g.addDue(p.endMs)
					}
				}
			}
		}
	}
	for _, s := range e.series {
		s.trim()
	}
}

// warmUp decides a group's pane ends up to decidedMs again, silently, and
// keeps the pending timer it ends with.
func (e *Engine) warmUp(rs *ruleState, g *group, decidedMs int64) {
	var ends []int64
	for _, s := range g.ordered {
		for _, p := range s.panes {
			if p.final && p.endMs <= decidedMs {
				ends = append(ends, p.endMs)
			}
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
	pending, since := g.tr.State() == Pending, g.tr.since
	*g = saved
	if pending {
		g.tr.restorePending(since)
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
		s.src = e.progressOf(s.key.source)
		e.bindSeries(s)
		e.series[s.key] = s // kept even without rules: a negative cache
	}
	return s
}

// member returns the group of a series under a threshold rule, adding the
// series to it.
func (rs *ruleState) member(s *seriesEntry) *group {
	g := rs.group(s.key)
	if g.members == nil {
		g.members = map[*seriesEntry]struct{}{}
	}
	if _, ok := g.members[s]; !ok {
		g.members[s] = struct{}{}
		// In key order, so that a sum over several members adds in the
		// same order in every run.
		i := sort.Search(len(g.ordered), func(i int) bool { return !g.ordered[i].key.less(s.key) })
		g.ordered = slices.Insert(g.ordered, i, s)
		g.watch(s.src)
	}
	g.kind, g.typ, g.metric, g.area, g.source = s.key.kind, s.key.typ, s.key.metric, s.key.area, s.key.source
	return g
}

// bindSeries finds the threshold rules that use a series.
func (e *Engine) bindSeries(s *seriesEntry) {
	k := s.key
	for _, rs := range e.rules {
		if rs.Kind == KindThreshold && rs.Match.selects(k.kind, k.typ, k.metric, k.area, k.source) {
			s.rules = append(s.rules, rs)
			s.early = s.early || rs.Early
			// window + for: a restart rebuilds a pending timer from it (RestoreWindows).
			s.keepMs = max(s.keepMs, (rs.Window + rs.Threshold.For).Milliseconds())
		}
	}
	if len(s.rules) == 0 {
		s.panes = nil
	}
}

func (k seriesKey) less(o seriesKey) bool {
	return k.kind+"\x00"+k.typ+"\x00"+k.metric+"\x00"+k.area+"\x00"+k.source <
		o.kind+"\x00"+o.typ+"\x00"+o.metric+"\x00"+o.area+"\x00"+o.source
}

// put stores a pane, replacing an earlier version of the same pane.
func (s *seriesEntry) put(p pane) {
	i, found := s.find(p.startMs)
	if found {
		s.panes[i] = p
	} else {
		s.panes = slices.Insert(s.panes, i, p)
	}
}

// addPartial adds one value to an open pane, unless the pane is final.
func (s *seriesEntry) addPartial(startMs, endMs int64, v float64) bool {
	i, found := s.find(startMs)
	if !found {
		s.panes = slices.Insert(s.panes, i, pane{startMs: startMs, endMs: endMs, min: math.Inf(1), max: math.Inf(-1)})
	}
	p := &s.panes[i]
	if p.final {
		return false
	}
	p.count++
	p.sum += v
	p.min, p.max, p.last = math.Min(p.min, v), math.Max(p.max, v), v
	if p.count == 1 {
		p.first = v
	}
	return true
}

func (s *seriesEntry) find(startMs int64) (int, bool) {
	i := sort.Search(len(s.panes), func(i int) bool { return s.panes[i].startMs >= startMs })
	return i, i < len(s.panes) && s.panes[i].startMs == startMs
}

// span returns the indexes [i, j) of the panes inside [fromMs, toMs).
func (s *seriesEntry) span(fromMs, toMs int64) (int, int) {
	i := sort.Search(len(s.panes), func(k int) bool { return s.panes[k].startMs >= fromMs })
	j := sort.Search(len(s.panes), func(k int) bool { return s.panes[k].endMs > toMs })
	return i, max(i, j)
}

// trim forgets the panes no decision can read any more: those older than
// the longest window (+ for) before the oldest last decision of the
// series' groups. What is kept follows the decisions taken on final
// panes, not the newest pane seen.
func (s *seriesEntry) trim() {
	if len(s.panes) == 0 {
		return
	}
	decided := int64(math.MaxInt64)
	for _, rs := range s.rules {
		decided = min(decided, rs.member(s).lastEvalMs)
	}
	if decided == math.MinInt64 {
		return
	}
	drop := 0
	for drop < len(s.panes) && s.panes[drop].endMs <= decided-s.keepMs {
		drop++
	}
	if drop > 0 {
		s.panes = append(s.panes[:0], s.panes[drop:]...)
	}
}

// evaluate decides a threshold rule's group at pane end endMs: finally
// (every pane of the window final) or early (a partial window, which may
// only raise).
func (e *Engine) evaluate(rs *ruleState, g *group, endMs int64, final bool) {
	if endMs <= g.lastEvalMs {
		return // decided already (a replay after a restart, a correction)
	}
	if final {
		g.lastEvalMs = endMs
	}
	at := time.UnixMilli(endMs).UTC()
	if rs.Active != nil && !rs.Active.contains(time.UnixMilli(endMs-1).In(e.cfg.Location)) {
		if !final {
			return
		}
		// Outside its hours the rule does not apply: a day limit does not
		// judge the night.
		if g.tr.firing() {
			e.emitResolve(rs, g, endMs, g.value, "ngoài khung giờ áp dụng "+rs.Active.String())
		}
		g.tr.cancel()
		return
	}
	value, ok := aggregate(rs.Agg, rs.Threshold.Op, g.ordered, endMs-rs.Window.Milliseconds(), endMs)
	if !ok {
		return // no data is no evidence either way: hold the state
	}
	g.value = value
	state, level := g.tr.State(), g.tr.levelIndex()
	// What an early evaluation raised at a later end stands until that
	// end's final decision.
	mayLower := final && endMs >= g.raisedMs
	t, changed := g.tr.Observe(at, value, rs.Threshold, mayLower)
	if !final && (g.tr.State() != state || g.tr.levelIndex() > level) {
		g.raisedMs = max(g.raisedMs, endMs)
	}
	if changed {
		if state == Firing && t.Status == StatusFiring && g.tr.levelIndex() > level {
			g.ops.clearAck() // worse than what was acknowledged
		}
		e.emit(rs, g, t.Status, endMs, value, t.Threshold)
		e.out[len(e.out)-1].Early = !final
	}
}

// aggregate computes agg over the panes of members in [fromMs, toMs). It
// walks the panes rather than subtracting running totals, so that a sum is
// the same, to the last bit, however much history a run holds.
func aggregate(agg string, op Op, members []*seriesEntry, fromMs, toMs int64) (float64, bool) {
	var (
		count              uint64
		sum                float64
		lo, hi             = math.Inf(1), math.Inf(-1)
		last               float64
		lastEnd            int64 = math.MinInt64
		rate               float64
		haveRate, haveData bool
	)
	for _, s := range members {
		from, to := s.span(fromMs, toMs)
		panes := s.panes[from:to]
		switch agg {
		case "count", "sum", "avg":
			// The common case, and the long windows (24 h of rain): only
			// what it needs.
			for i := range panes {
				count += panes[i].count
				sum += panes[i].sum
			}
			haveData = haveData || count > 0
			continue
		}
		var fit slope
		for i := range panes {
			p := &panes[i]
			if p.count == 0 {
				continue
			}
			haveData = true
			lo, hi = math.Min(lo, p.min), math.Max(hi, p.max)
			if p.endMs > lastEnd {
				last, lastEnd = p.last, p.endMs // a tie between members: the first in key order
			}
			if agg == "rate_per_hour" {
				fit.add(float64(p.startMs-fromMs), p.sum/float64(p.count))
			}
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
