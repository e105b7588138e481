package alert

import (
	"errors"
	"os"
	"slices"
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
			[]string{"line 6: unknown key \"colour\"; an absence rule takes name, kind, summary, category, subCategory, labels, match, severity, after"}},
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
			"line 5: agg \"median\"", "line 6: op \"=>\" is not one of >, >=, <, <=", "line 8: severity \"severe\"",
			"line 9: resolve_after is required"}},
		{"duplicate name", "rules:\n  - {name: a, kind: absence, after: 1m, severity: info}\n  - {name: a, kind: absence, after: 2m, severity: info}\n",
			[]string{"line 3: rule name \"a\" is already used on line 2"}},
		{"ladder out of order", "rules:\n  - name: a\n    kind: threshold\n    window: 1m\n    agg: max\n    op: \">\"\n    levels: [{threshold: 2, severity: info}, {threshold: 1, severity: warning}]\n",
			[]string{"line 6: level 2 threshold 1 must be beyond"}},
		{"bad condition", "rules:\n  - name: a\n    kind: event\n    severity: info\n    resolve_after: 1m\n    when: [\"confidence is high\"]\n",
			[]string{"line 6: condition \"confidence is high\""}},
		{"bad active hours", "rules:\n  - name: a\n    kind: threshold\n    window: 1m\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n    active_hours: evenings\n",
			[]string{"line 9: active_hours \"evenings\""}},
	}
	tests = append(tests, shapeAndKindErrors...)
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

// One rule of each kind, to add a key to on the next line: line 9 after
// ruleT, line 6 after ruleE and ruleA.
const (
	ruleT = "rules:\n  - name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n"
	ruleE = "rules:\n  - name: e\n    kind: event\n    severity: info\n    resolve_after: 1m\n"
	ruleA = "rules:\n  - name: s\n    kind: absence\n    severity: info\n    after: 1m\n"
)

// shapeAndKindErrors: each problem the JSON Schema rejects too, with its
// message and the line of the offending key.
var shapeAndKindErrors = []struct {
	name string
	file string
	want []string
}{
	// durations
	{"zero window", strings.Replace(ruleT, "window: 10m", "window: 0m", 1), []string{`line 4: window "0m" must be at least 1m`}},
	{"negative window", strings.Replace(ruleT, "window: 10m", "window: -10m", 1), []string{`line 4: window "-10m" must be at least 1m`}},
	{"window in seconds", strings.Replace(ruleT, "window: 10m", "window: 3600s", 1),
		[]string{`line 4: window "3600s" must be written in whole minutes or hours with m and h, like 10m, 90m or 1h30m`}},
	{"zero resolve_after", strings.Replace(ruleE, "resolve_after: 1m", "resolve_after: 0s", 1),
		[]string{`line 5: resolve_after "0s" must be more than 0, like 15m`}},
	{"zero after", strings.Replace(ruleA, "after: 1m", "after: 0s", 1), []string{`line 5: after "0s" must be more than 0, like 15m`}},
	{"negative zero after", strings.Replace(ruleA, "after: 1m", "after: -0s", 1), []string{`line 5: after "-0s" must be more than 0`}},
	{"bare zero after", strings.Replace(ruleA, "after: 1m", "after: 0", 1),
		[]string{"line 5: after 0 is not a duration: give it a unit, like 90s, 10m or 1h"}},
	{"negative for", ruleT + "    for: -5m\n", []string{`line 9: for "-5m" must not be negative`}},
	{"negative zero for", ruleT + "    for: -0s\n", []string{`line 9: for "-0s" must be written without a sign`}},
	{"signed for", ruleT + "    for: +5m\n", []string{`line 9: for "+5m" must be written without a sign`}},
	{"bare zero for", ruleT + "    for: 0\n", []string{"line 9: for 0 is not a duration: give it a unit"}},

	// threshold, severity, levels, op
	{"severity with levels", "rules:\n  - name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    severity: info\n    levels:\n      - {threshold: 2, severity: warning}\n",
		[]string{"line 8: give either threshold with severity, or levels, not both (severity on line 7); each level has its own severity"}},
	{"threshold and severity with levels", ruleT + "    levels: [{threshold: 2, severity: warning}]\n",
		[]string{"line 9: give either threshold with severity, or levels, not both (threshold on line 7, severity on line 8)"}},
	{"empty levels", strings.Replace(ruleT, "    threshold: 1\n    severity: info\n", "    levels: []\n", 1),
		[]string{"line 7: levels is empty"}},
	{"threshold without severity", strings.Replace(ruleT, "    severity: info\n", "", 1),
		[]string{"line 7: threshold needs a severity: info, warning or critical"}},
	{"level errors on their own lines", strings.Replace(ruleT, "    threshold: 1\n    severity: info\n",
		"    levels:\n      - {threshold: 1, severity: info}\n      - {threshold: 2, severity: severe}\n      - {severity: critical}\n", 1),
		[]string{`line 9: level 2 severity "severe" must be info, warning or critical`, "line 10: level 3 needs a threshold"}},
	{"missing op", strings.Replace(ruleT, "    op: \">\"\n", "", 1),
		[]string{`line 2: op is required for a threshold rule: >, >=, < or <=, in quotes (op: ">=")`}},
	{"unquoted op", strings.Replace(ruleT, `op: ">"`, "op: >", 1),
		[]string{`line 6: op must be quoted (op: ">"): an unquoted > or | starts a YAML block`}},
	{"missing agg", strings.Replace(ruleT, "    agg: max\n", "", 1), []string{"line 2: agg is required for a threshold rule"}},
	{"infinite threshold", strings.Replace(ruleT, "threshold: 1", "threshold: .inf", 1),
		[]string{"line 7: threshold must be a finite number, not .inf"}},
	{"quoted threshold", strings.Replace(ruleT, "threshold: 1", `threshold: "1"`, 1),
		[]string{`line 7: threshold must be a number, not the text "1"`}},

	// keys of another kind, given even with a zero value
	{"threshold key on an event rule", ruleE + "    window: 10m\n",
		[]string{"line 6: window does not apply to an event rule (its own keys are when, severity, resolve_after, group_by)"}},
	{"false early on an event rule", ruleE + "    early: false\n", []string{"line 6: early does not apply to an event rule"}},
	{"event key on a threshold rule", ruleT + "    when: []\n", []string{"line 9: when does not apply to a threshold rule"}},
	{"absence key on an event rule", ruleE + "    after: 5m\n", []string{"line 6: after does not apply to an event rule"}},
	{"event key on an absence rule", ruleA + "    resolve_after: 5m\n",
		[]string{"line 6: resolve_after does not apply to an absence rule (its own keys are severity, after)"}},
	{"threshold key on an absence rule", ruleA + "    threshold: 0\n", []string{"line 6: threshold does not apply to an absence rule"}},
	{"group_by on an absence rule", ruleA + "    group_by: []\n",
		[]string{"line 6: group_by does not apply to an absence rule: an absence rule always alerts per source"}},
	{"metric on an absence rule", ruleA + "    match:\n      kind: environment\n      metric: height\n",
		[]string{"line 8: match.metric does not apply to an absence rule: absence rules watch sources, not metrics"}},
	{"unknown key of no kind", strings.Replace(ruleA, "kind: absence", "kind: silence", 1) + "    colour: red\n",
		[]string{`line 6: unknown key "colour"; the keys of a rule are name, kind, summary, category, subCategory, labels, match, ` +
			"group_by, window, agg, op, threshold, severity, levels, clear, for, early, active_hours, when, resolve_after, after"}},

	// group_by, when, summary
	{"duplicate group_by", ruleT + "    group_by: [source, area, source]\n", []string{`line 9: group_by lists "source" twice`}},
	{"dotted non-attrs field", ruleE + "    when:\n      - \"confidence > 0.5\"\n      - \"location.lat > 16\"\n",
		[]string{`line 8: condition "location.lat > 16": a condition can use a metric of the event ` +
			"(a name of letters, digits and _ starting with a letter, e.g. confidence) or one of its attrs " +
			`(attrs.<key>, e.g. attrs.priority), up to 48 characters, not "location.lat"`}},
	{"field too long", ruleE + "    when: [\"a2345678901234567890123456789012345678901234567890 > 1\"]\n",
		[]string{`line 6: condition "a2345678901234567890123456789012345678901234567890 > 1": a condition can use`}},
	{"attrs without key", ruleE + "    when: [\"attrs. == x\"]\n", []string{`line 6: condition "attrs. == x": a condition can use`}},
	{"unknown placeholder", ruleA + "    summary: \"{{source}} im lặng {{ silence }} giây, {{foo}}\"\n",
		[]string{"line 6: summary placeholder {{ silence }}, {{foo}} is not known; the placeholders are {{value}}, {{threshold}}, " +
			"{{level}}, {{severity}}, {{rule}}, {{kind}}, {{type}}, {{metric}}, {{area}}, {{area_name}}, {{source}}, " +
			"{{window}}, {{agg}}, {{op}}"}},
	{"unclosed placeholder", ruleA + "    summary: \"{{source} im lặng\"\n",
		[]string{`line 6: summary has a {{ without its closing }}: "{{source} im lặng"`}},
	{"bad active_hours form", ruleT + "    active_hours: \"6:00-21:00\"\n",
		[]string{`line 9: active_hours "6:00-21:00" must look like 06:00-21:00 (HH:MM-HH:MM, local time)`}},
	{"empty active_hours interval", ruleT + "    active_hours: \"06:00-06:00\"\n",
		[]string{`line 9: active_hours "06:00-06:00" starts and ends at the same time`}},

	// YAML types decoding alone would take
	{"null value", ruleA + "    summary:\n", []string{"line 6: summary has no value: give one or leave the key out"}},
	{"number for text", ruleA + "    category: 42\n", []string{"line 6: category must be text: 42 reads as a number in YAML, so put it in quotes"}},
	{"number label", ruleA + "    labels:\n      river: huong\n      gauge: 1\n",
		[]string{`line 8: label "gauge" must be text: 1 reads as a number in YAML, so put it in quotes`}},
	{"null glob", ruleA + "    match: {kind: ~}\n", []string{"line 6: match kind has no value"}},
	{"yes for true", ruleT + "    early: yes\n", []string{`line 9: early must be true or false, not the text "yes"`}},
	{"group_by not a list", ruleT + "    group_by: source\n", []string{`line 9: group_by must be a list, like [area, source], not the text "source"`}},

	// repeated and unknown keys, with lines past blank lines and comments
	{"repeated key", ruleA + "\n    # again\n    after: 2m\n", []string{"line 8: after is given twice (first on line 5)"}},
	{"unknown key past a blank line", ruleA + "\n\n    colour: red\n", []string{`line 8: unknown key "colour"`}},
	{"repeated rules key", ruleA + "rules: []\n", []string{"line 6: 'rules:' is given twice (first on line 1): put every rule in one list"}},
	{"merge key", "rules:\n  - &base {name: a, kind: absence, after: 1m, severity: info}\n  - <<: *base\n    name: b\n",
		[]string{"line 3: YAML merge keys (<<) are not supported in a rule: write its keys out"}},
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
	// Partitions split the city by area, and a rule grouped by source
	// alone is whole in one partition only if each source reports one
	// area. Hue-S reports from every area under one source, so a rule
	// that can see feedback must group by area, or two partitions would
	// fire the same fingerprint at once.
	for _, r := range rules {
		if !anyGlob(r.Match.Kind, "feedback") {
			continue
		}
		if !slices.Contains(r.groupBy(), "area") {
			t.Errorf("%s sees Hue-S feedback but groups by %v: it must group by area", r.Name, r.groupBy())
		}
	}
}
