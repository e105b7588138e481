package alert

import (
	"math"
	"time"
)

// Absence rules: one alert per source that has sent a matching event and
// then stays silent for `after`, on the engine clock; it resolves when the
// source speaks again.

// seen records that a source was heard from, at engine clock heard, for
// an absence rule, resolving the alert of a source that was silent.
// Silence is measured on the engine clock from when the source was last
// heard, not from its own event times: a sensor whose clock lags the
// city's by more than `after` is alive, and must neither alert nor flap.
func (e *Engine) seen(rs *ruleState, g *group, heard int64) {
	if heard <= g.lastMs {
		return
	}
	g.lastMs = heard
	if g.tr.firing() && heard >= g.lastEvalMs {
		g.lastEvalMs = heard
		e.emitResolve(rs, g, heard, 0, "đã nhận lại dữ liệu")
	}
}

// fireSilent fires the alerts of the sources silent for `after` by clock.
func (e *Engine) fireSilent(rs *ruleState, clock int64) {
	for _, g := range rs.groups {
		if g.lastMs == math.MinInt64 {
			continue
		}
		at := g.lastMs + rs.After.Milliseconds()
		if g.tr.firing() || at > clock || at <= g.lastEvalMs {
			continue
		}
		g.lastEvalMs = at
		g.tr.open(time.UnixMilli(at).UTC(), 0)
		e.emit(rs, g, StatusFiring, at, float64(at-g.lastMs)/1000, rs.After.Seconds())
	}
}
