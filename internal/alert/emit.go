package alert

import (
	"math"
	"strconv"
	"time"
)

// emitResolve ends a firing alert; why goes into the summary.
func (e *Engine) emitResolve(rs *ruleState, g *group, atMs int64, value float64, why string) {
	g.tr.close()
	g.resolveWhy = why
	e.emit(rs, g, StatusResolved, atMs, value, g.firingThreshold)
}

// emit renders the tracker's current transition as an alert.
func (e *Engine) emit(rs *ruleState, g *group, status Status, atMs int64, value, threshold float64) {
	sev := rs.Severity
	levelName := ""
	if rs.Kind == KindThreshold {
		lv := rs.Threshold.Levels[g.tr.levelIndex()]
		sev, levelName = lv.Severity, lv.Name
		if status == StatusFiring {
			threshold = lv.Threshold
		}
	}
	if levelName == "" {
		levelName = severityName[sev]
	}
	at := time.UnixMilli(atMs).UTC()
	id, seq := g.tr.episode()
	a := Alert{
		ID: id, Seq: seq, Fingerprint: g.fp, Rule: rs.Name, Status: status, Severity: sev,
		Category: rs.Category, SubCategory: rs.SubCategory,
		Kind: g.kind, Type: g.typ, Metric: g.metric, Area: g.area, Source: g.source,
		Value: round(value), Threshold: threshold, StartsAt: g.tr.started(), UpdatedAt: e.cfg.Now().UTC(),
		Labels: rs.Labels, EvalTime: at,
	}
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	g.ops.render(&a)
	switch rs.Kind {
	case KindThreshold:
		a.Op, a.Agg, a.Window = string(rs.Threshold.Op), rs.Agg, formatDuration(rs.Window)
	case KindEvent:
		a.Window = formatDuration(rs.ResolveAfter)
		a.Op, a.Threshold = rs.eventThreshold(g.metric)
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
		g.ops = operatorState{} // the next episode starts afresh
	}
	if e.cfg.Silences != nil {
		a.SilencedBy = e.cfg.Silences.SilencedBy(&a)
	}
	e.out = append(e.out, a)
}

const defaultSummary = "{{rule}}: {{metric}} {{value}} {{op}} {{threshold}} tại {{area}} ({{source}})"

var severityName = map[Severity]string{Info: "thông tin", Warning: "cảnh báo", Critical: "nguy hiểm"}

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
