package alert

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The kind-specific part of reading a rule.

// threshold reads window, agg, op, the ladder, for, early, active_hours.
func (p *ruleParser) threshold(r *Rule) {
	r.Window = parseWindow(p.d.Window, p.has("window"), func(format string, args ...any) { p.add("window", format, args...) })
	switch {
	case !p.has("agg"):
		p.add("agg", "agg is required for a threshold rule: count, sum, avg, min, max, last or rate_per_hour")
	case !aggregates[p.d.Agg]:
		p.add("agg", "agg %q must be one of count, sum, avg, min, max, last, rate_per_hour", p.d.Agg)
	}
	r.Agg = p.d.Agg
	r.Threshold = Threshold{Op: Op(p.d.Op), Clear: p.d.Clear, For: p.dur("for", p.d.For, false, false)}
	opOK := false
	switch _, v := lookup(p.n, "op"); {
	case v == nil:
		p.add("op", `op is required for a threshold rule: >, >=, < or <=, in quotes (op: ">=")`)
	case v.Style&(yaml.FoldedStyle|yaml.LiteralStyle) != 0:
		p.add("op", `op must be quoted (op: ">"): an unquoted > or | starts a YAML block`)
	case !r.Threshold.Op.valid():
		p.add("op", "op %q is not one of >, >=, <, <=", p.d.Op)
	default:
		opOK = true
	}
	ladderOK := true
	switch {
	case p.has("levels") && (p.has("threshold") || p.has("severity")):
		var both []string
		for _, k := range []string{"threshold", "severity"} {
			if p.has(k) {
				both = append(both, fmt.Sprintf("%s on line %d", k, keyLine(p.n, k)))
			}
		}
		p.add("levels", "give either threshold with severity, or levels, not both (%s); each level has its own severity",
			strings.Join(both, ", "))
		ladderOK = false
	case p.has("levels"):
		if len(p.d.Levels) == 0 {
			p.add("levels", "levels is empty: give at least one {threshold, severity}")
			ladderOK = false
		}
		_, lv := lookup(p.n, "levels")
		for i, l := range p.d.Levels {
			item := deref(lv.Content[i])
			if l.Threshold == nil {
				p.errs = append(p.errs, RuleError{item.Line, fmt.Sprintf("level %d needs a threshold", i+1)})
				ladderOK = false
				continue
			}
			sev, ok := severities[l.Severity]
			if !ok {
				msg := fmt.Sprintf("level %d severity %q must be info, warning or critical", i+1, l.Severity)
				if l.Severity == "" {
					msg = fmt.Sprintf("level %d needs a severity: info, warning or critical", i+1)
				}
				p.errs = append(p.errs, RuleError{keyLine(item, "severity"), msg})
				ladderOK = false
			}
			r.Threshold.Levels = append(r.Threshold.Levels, Level{Threshold: *l.Threshold, Severity: sev, Name: l.Name})
		}
	case p.has("threshold") && p.has("severity"):
		s := p.severity("severity", p.d.Severity)
		ladderOK = s != ""
		r.Threshold.Levels = []Level{{Threshold: *p.d.Threshold, Severity: s}}
	case p.has("threshold"):
		p.add("threshold", "threshold needs a severity: info, warning or critical")
		ladderOK = false
	case p.has("severity"):
		p.add("severity", "severity needs a threshold (or use levels, each with its own severity)")
		ladderOK = false
	default:
		p.add("threshold", "a threshold rule needs threshold and severity, or levels")
		ladderOK = false
	}
	if opOK && ladderOK {
		if err := r.Threshold.Validate(); err != nil {
			p.add("op", "%v", err)
		}
	}
	if r.Early && opOK && aggregates[r.Agg] && !monotone(r.Agg, r.Threshold.Op) {
		p.add("early", "early: true needs an aggregate a partial pane can only push further past the threshold "+
			"(max, sum or count with > or >=; min with < or <=), so a partial result never fires an alert the final pane would not")
	}
	if p.has("active_hours") {
		h, err := parseHours(p.d.ActiveHours)
		if err != nil {
			p.add("active_hours", "%v", err)
		}
		r.Active = &h
	}
}

// event reads severity, resolve_after and the when conditions.
func (p *ruleParser) event(r *Rule) {
	r.Severity = p.severity("severity", p.d.Severity)
	r.ResolveAfter = p.dur("resolve_after", p.d.ResolveAfter, true, true)
	_, wv := lookup(p.n, "when")
	for i, w := range p.d.When {
		line := deref(wv.Content[i]).Line
		m := condition.FindStringSubmatch(w)
		switch {
		case m == nil:
			p.errs = append(p.errs, RuleError{line, fmt.Sprintf("condition %q must look like 'confidence >= 0.8' or 'attrs.priority == urgent'", w)})
		case !conditionField.MatchString(m[1]):
			p.errs = append(p.errs, RuleError{line, fmt.Sprintf("condition %q: a condition can use a metric of the event "+
				"(a name of letters, digits and _ starting with a letter, e.g. confidence) or one of its attrs "+
				"(attrs.<key>, e.g. attrs.priority), up to 48 characters, not %q", w, m[1])})
		default:
			r.When = append(r.When, Condition{Field: m[1], Op: Op(m[2]), Value: strings.Trim(m[3], `"'`)})
		}
	}
}

// absence reads severity and after.
func (p *ruleParser) absence(r *Rule) {
	r.Severity = p.severity("severity", p.d.Severity)
	r.After = p.dur("after", p.d.After, true, true)
}
