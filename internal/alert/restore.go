package alert

import "github.com/iocstream/iocstream/internal/event"

// RestoreEvent feeds an event read back from the events table at start-up.
// Absence rules learn when each source was last seen, and a firing event
// alert learns its last match, so that resolve_after counts from the right
// moment. Nothing fires or resolves here.
func (e *Engine) RestoreEvent(ev *event.Event) {
	nowMs := e.cfg.Now().UnixMilli()
	if t := min(ev.TimeMs, nowMs); t > e.maxEventMs {
		e.maxEventMs, e.wallAtMax = t, nowMs
	}
	k, kr := e.eventRules(ev)
	for _, r := range kr.events {
		switch rs := r.rs; rs.Kind {
		case KindAbsence:
			r.g.lastMs = max(r.g.lastMs, ev.TimeMs)
		case KindEvent:
			value, metric, ok := rs.matches(ev)
			if !ok {
				continue
			}
			g := rs.group(seriesKey{k.kind, k.typ, metric, k.area, k.source})
			if g.tr.firing() && ev.TimeMs >= g.tr.started().UnixMilli() && ev.TimeMs > g.lastMs {
				g.lastMs, g.value = ev.TimeMs, value
			}
		}
	}
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
			g = rs.group(seriesKey{a.Kind, a.Type, a.Metric, a.Area, a.Source})
		}
		if g == nil || g.fp != a.Fingerprint {
			// The rule is gone or now groups differently.
			if a.Status == StatusFiring {
				e.out = append(e.out, e.orphanResolved(a))
			}
			continue
		}
		evalMs := a.EvalTime.UnixMilli()
		if a.Early {
			// Decided on a partial window: the final decision at its pane
			// end is still to come, and what it raised stands until then.
			// RestoreWindows adds what the windows tell was decided.
			g.raisedMs = max(g.raisedMs, evalMs)
		} else {
			g.lastEvalMs = max(g.lastEvalMs, evalMs)
		}
		g.kind, g.typ, g.metric, g.area, g.source = a.Kind, a.Type, a.Metric, a.Area, a.Source
		g.value, g.lastSummary, g.firingThreshold = a.Value, a.Summary, a.Threshold
		if a.Status == StatusFiring {
			g.ops.restore(&a)
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
