package alert

import (
	"strings"
	"testing"
)

// TestSummaryCheckAndRenderAgree: every template the rules check accepts
// renders every placeholder, whatever white space surrounds the names, and
// every template it refuses would have printed a placeholder raw.
func TestSummaryCheckAndRenderAgree(t *testing.T) {
	a := &Alert{Rule: "r", Kind: "environment", Type: "water_level", Metric: "height", Area: "kim-long",
		Source: "wl-kim-long", Value: 2.5, Threshold: 2, Op: ">=", Agg: "max", Window: "10m", Severity: Warning}
	spaces := []string{"", " ", "  ", "\t", "\n", "\v", "\f", "\r", "\u00a0", "\u2003", "\u0085"}
	names := append(append([]string{}, Placeholders...), "valu", "Value", "", "value}", "{value")
	for _, name := range names {
		for _, before := range spaces {
			for _, after := range spaces {
				tmpl := "Mực nước {{" + before + name + after + "}} tại {{area}}"
				msg := checkSummary(tmpl)
				out := renderSummary(tmpl, a, "báo động 2", map[string]string{"kim-long": "Kim Long"})
				switch {
				case msg == "" && strings.Contains(out, "{{"):
					t.Errorf("%q: accepted, but renders %q", tmpl, out)
				case msg != "" && !strings.Contains(out, "{{"):
					t.Errorf("%q: refused (%s), but renders %q", tmpl, msg, out)
				}
			}
		}
	}
	for _, tmpl := range []string{"{{value", "a {{value}} b {{", "{{}}"} {
		if checkSummary(tmpl) == "" {
			t.Errorf("%q accepted", tmpl)
		}
	}
	if got := renderSummary("{{ value }} m ≥ {{level}} ({{threshold}} m) {{area_name}}", a, "báo động 2",
		map[string]string{"kim-long": "Kim Long"}); got != "2.5 m ≥ báo động 2 (2 m) Kim Long" {
		t.Errorf("rendered %q", got)
	}
}
