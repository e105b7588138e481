package alert

import (
	"strconv"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/event"
)

// Event rules: one alert per group (by source unless group_by says
// otherwise) fires on the first event that meets every condition, takes
// further matches into the same episode, and resolves resolve_after after
// the last one, on the engine clock.

// match fires or extends an event rule.
func (e *Engine) match(rs *ruleState, k eventKey, ev *event.Event) {
	value, metric, ok := rs.matches(ev)
	if !ok {
		return
	}
	g := rs.group(seriesKey{k.kind, k.typ, metric, k.area, k.source})
	if g.tr.firing() {
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
	g.tr.open(at, 0)
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
		case Equal:
			return v.num == want
		case NotEqual:
			return v.num != want
		default:
			return c.Op.Holds(v.num, want)
		}
	}
	switch c.Op {
	case Equal:
		return v.str == c.Value
	case NotEqual:
		return v.str != c.Value
	}
	return false // an order comparison needs numbers on both sides
}

// resolveQuiet resolves the firing event alerts whose resolve_after has
// passed on the engine clock.
func (e *Engine) resolveQuiet(clock int64) {
	for g, rs := range e.firingEvt {
		if at := g.lastMs + rs.ResolveAfter.Milliseconds(); at <= clock {
			delete(e.firingEvt, g)
			g.lastEvalMs = at
			e.emitResolve(rs, g, at, g.value, "không có phát hiện mới trong "+formatDuration(rs.ResolveAfter))
		}
	}
}

// eventThreshold is the op and threshold of the condition an event rule's
// value comes from (its first, on metric), so that an event alert shows
// "0.95 >= 0.8" as a threshold alert does; empty when there is none.
func (rs *ruleState) eventThreshold(metric string) (string, float64) {
	if len(rs.When) == 0 || rs.When[0].Field != metric || !rs.When[0].Op.valid() {
		return "", 0
	}
	th, err := strconv.ParseFloat(rs.When[0].Value, 64)
	if err != nil {
		return "", 0
	}
	return string(rs.When[0].Op), th
}
