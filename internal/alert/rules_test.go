package alert

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

const goodRules = `rules:
  - name: river_flood_kim_long
    kind: threshold
    summary: "Mực nước sông Hương tại Kim Long {{value}} m"
    category: naturalDisaster
    subCategory: flood
    match: {kind: environment, type: water_level, metric: height, area: kim-long}
    window: 10m
    agg: max
    op: ">="
    levels:
      - {threshold: 1.0, severity: info}
      - {threshold: 2.0, severity: warning}
      - {threshold: 3.5, severity: critical}
    clear: 0.9
    group_by: [area, source]
  - name: noise_night
    kind: threshold
    match: {kind: environment, type: noise, metric: LAeq}
    window: 60m
    agg: avg
    op: ">"
    threshold: 55
    severity: warning
    for: 10m
    active_hours: "21:00-06:00"
  - name: camera_fire
    kind: event
    match: {kind: camera, type: [fire, smoke]}
    when: ["confidence >= 0.8"]
    severity: critical
    resolve_after: 15m
  - name: silent_sensor
    kind: absence
    match: {kind: environment, source: "wl-*"}
    after: 30m
    severity: warning
`

func TestParseRulesGood(t *testing.T) {
	rules, err := ParseRules([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 {
		t.Fatalf("%d rules", len(rules))
	}
	flood := rules[0]
	if flood.Window != 10*time.Minute || flood.Agg != "max" || len(flood.Threshold.Levels) != 3 ||
		*flood.Threshold.Clear != 0.9 || flood.Match.Area[0] != "kim-long" || flood.Line != 2 {
		t.Fatalf("flood rule %+v", flood)
	}
	noise := rules[1]
	if noise.Active == nil || noise.Active.Start != 21*time.Hour || noise.Active.End != 6*time.Hour ||
		noise.Threshold.For != 10*time.Minute || noise.Threshold.Levels[0].Severity != Warning {
		t.Fatalf("noise rule %+v", noise)
	}
	fire := rules[2]
	if len(fire.When) != 1 || fire.When[0] != (Condition{"confidence", ">=", "0.8"}) || fire.Severity != Critical ||
		len(fire.Match.Type) != 2 || fire.ResolveAfter != 15*time.Minute {
		t.Fatalf("fire rule %+v", fire)
	}
	if rules[3].After != 30*time.Minute {
		t.Fatalf("absence rule %+v", rules[3])
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // "line N: fragment"
	}{
		{"not yaml", "rules:\n\t- name: a\n", []string{"line 2: not valid YAML: found character that cannot start any token"}},
		{"empty", "", []string{"line 1: the file is empty"}},
		{"no rules key", "alerts: []\n", []string{"line 1: unknown top-level key \"alerts\"", "line 1: 'rules:' must be a list"}},
		{"unknown field", "rules:\n  - name: a\n    kind: absence\n    after: 1m\n    severity: info\n    colour: red\n",
			[]string{"line 6: field colour not found"}},
		{"several errors, each with its line", `rules:
  - name: Bad-Name
    kind: threshold
    window: 90s
    agg: median
    op: "=>"
    threshold: 1
    severity: severe
  - name: ok_rule
    kind: event
    severity: info
`, []string{"line 2: name \"Bad-Name\"", "line 4: window 1m30s must be a whole number of minutes",
			"line 5: agg \"median\"", "line 8: severity \"severe\"", "line 9: resolve_after is required"}},
		{"duplicate name", "rules:\n  - {name: a, kind: absence, after: 1m, severity: info}\n  - {name: a, kind: absence, after: 2m, severity: info}\n",
			[]string{"line 3: rule name \"a\" is already used on line 2"}},
		{"ladder out of order", "rules:\n  - name: a\n    kind: threshold\n    window: 1m\n    agg: max\n    op: \">\"\n    levels: [{threshold: 2, severity: info}, {threshold: 1, severity: warning}]\n",
			[]string{"line 6: level 2 threshold 1 must be beyond"}},
		{"bad condition", "rules:\n  - name: a\n    kind: event\n    severity: info\n    resolve_after: 1m\n    when: [\"confidence is high\"]\n",
			[]string{"line 6: condition \"confidence is high\""}},
		{"bad active hours", "rules:\n  - name: a\n    kind: threshold\n    window: 1m\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n    active_hours: evenings\n",
			[]string{"line 9: active_hours \"evenings\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.file))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want Errors", err)
			}
			got := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			if len(errs) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%s", len(errs), len(tt.want), got)
			}
		})
	}
}

// The shipped Huế pack must parse, and its river ladders must be the
// alarm levels of Decision 05/2020/QĐ-TTg.
func TestHueRulePack(t *testing.T) {
	data, err := os.ReadFile("../../deployments/rules/hue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Rule{}
	kinds := map[string]int{}
	for _, r := range rules {
		byName[r.Name] = r
		kinds[r.Kind]++
	}
	if kinds[KindThreshold] == 0 || kinds[KindEvent] == 0 || kinds[KindAbsence] == 0 {
		t.Fatalf("every rule kind should be used: %v", kinds)
	}
	for name, want := range map[string][]float64{"river_level_kim_long": {1.0, 2.0, 3.5}, "river_level_phu_oc": {1.5, 3.0, 4.5}} {
		r := byName[name]
		if len(r.Threshold.Levels) != 3 {
			t.Fatalf("%s: %+v", name, r.Threshold.Levels)
		}
		for i, l := range r.Threshold.Levels {
			if l.Threshold != want[i] || l.Severity != []Severity{Info, Warning, Critical}[i] {
				t.Errorf("%s level %d: %+v", name, i+1, l)
			}
		}
	}
	if fire := byName["camera_fire_smoke"]; fire.Severity != Critical || fire.When[0].Value != "0.8" {
		t.Errorf("fire rule %+v", fire)
	}
}
