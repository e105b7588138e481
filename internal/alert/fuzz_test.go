package alert

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParseRules: no rules file may crash the parser (iocd reloads files
// an operator is still editing); an accepted file must give rules the
// engine can run, and a refused one must say where.
func FuzzParseRules(f *testing.F) {
	hue, err := os.ReadFile("../../deployments/rules/hue.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hue)
	f.Add([]byte(kimLongRule))
	f.Add([]byte("rules:\n" + fireRule))
	f.Add([]byte("rules: []\n"))
	f.Add([]byte("rules:\n  - {name: a, kind: absence, after: 1m, severity: info}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error without lines: %v", err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Msg == "" {
					t.Fatalf("error without a line or a message: %+v", e)
				}
			}
			return
		}
		plain := &Alert{Rule: "r", Kind: "k", Type: "t", Metric: "m", Area: "a", Source: "s", Op: ">", Agg: "max", Window: "1m"}
		for _, r := range rules {
			if out := renderSummary(r.Summary, plain, "level", nil); strings.Contains(out, "{{") {
				t.Fatalf("accepted rule %s: summary %q renders %q", r.Name, r.Summary, out)
			}
			if r.Kind == KindThreshold {
				if err := r.Threshold.Validate(); err != nil {
					t.Fatalf("accepted rule %s cannot run: %v", r.Name, err)
				}
				if r.Window <= 0 {
					t.Fatalf("accepted rule %s has window %s", r.Name, r.Window)
				}
			}
		}
		// The engine must take whatever the parser accepts.
		e := NewEngine(EngineConfig{}, rules)
		e.Tick(0)
	})
}
