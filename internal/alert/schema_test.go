package alert_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/iocstream/iocstream/internal/alert"
)

// The JSON Schema of the rules file (what rule authors' editors read) and
// ParseRules (what iocd enforces) must agree: the Huế pack and the good
// rules below pass both, the bad ones fail both.

const rulesSchema = "../../schemas/rules.schema.json"

func compileRulesSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(rulesSchema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// validateYAML reads a YAML document as the JSON value a YAML-aware editor
// validates, and checks it against the schema.
func validateYAML(sch *jsonschema.Schema, src string) error {
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	v, err := jsonValue(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("no JSON form: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

// jsonValue turns yaml.v3's map[any]any (mappings with non-string keys)
// into JSON objects.
func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	case []any:
		for i, e := range x {
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
	}
	return v, nil
}

func TestSchemaHueRulePack(t *testing.T) {
	sch := compileRulesSchema(t)
	data, err := os.ReadFile("../../deployments/rules/hue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateYAML(sch, string(data)); err != nil {
		t.Errorf("schema rejects the Huế pack: %v", err)
	}
	if _, err := alert.ParseRules(data); err != nil {
		t.Errorf("parser rejects the Huế pack: %v", err)
	}
}

// rulesFile wraps one rule (a YAML mapping indented as a list item's body)
// into a rules file.
func rulesFile(rule string) string { return "rules:\n  - " + rule }

var goodRuleFiles = []struct{ name, file string }{
	{"threshold minimal", rulesFile(`name: t
    kind: threshold
    window: 1m
    agg: max
    op: ">"
    threshold: 1
    severity: info
`)},
	{"threshold levels minimal", rulesFile(`name: t
    kind: threshold
    window: 10m
    agg: avg
    op: "<="
    levels: [{threshold: 20, severity: warning}]
`)},
	{"threshold every key", rulesFile(`name: river_level_kim_long
    kind: threshold
    summary: "Mực nước {{value}} m ≥ {{level}} ({{threshold}} m) tại {{area_name}}"
    category: naturalDisaster
    subCategory: flood
    labels: {river: huong, gauge: "1"}
    match: {kind: environment, type: [water_level], metric: height, area: "kim-*", source: [wl-kim-long, "wl-?"]}
    group_by: [area, source, type]
    window: 1h30m
    agg: max
    op: ">="
    levels:
      - {threshold: 1.0, severity: info, name: "báo động 1"}
      - {threshold: 2.0, severity: warning, name: "báo động 2"}
      - {threshold: 3.5, severity: critical}
    clear: 0.9
    for: 90s
    early: true
    active_hours: "21:00-06:00"
`)},
	{"threshold early min below", rulesFile(`name: slow
    kind: threshold
    window: 5m
    agg: min
    op: "<"
    threshold: 10
    severity: warning
    early: true
`)},
	{"threshold early false with avg", rulesFile(`name: t
    kind: threshold
    window: 720m
    agg: avg
    op: ">"
    threshold: 1
    severity: critical
    early: false
    for: 0s
`)},
	{"threshold every agg", `rules:
  - {name: a1, kind: threshold, window: 1m, agg: count, op: ">", threshold: 1, severity: info}
  - {name: a2, kind: threshold, window: 1m, agg: sum, op: ">=", threshold: 1, severity: info}
  - {name: a3, kind: threshold, window: 1m, agg: avg, op: "<", threshold: 1, severity: info}
  - {name: a4, kind: threshold, window: 1m, agg: min, op: "<=", threshold: 1, severity: info}
  - {name: a5, kind: threshold, window: 1m, agg: max, op: ">", threshold: 1, severity: info}
  - {name: a6, kind: threshold, window: 1m, agg: last, op: ">", threshold: 1, severity: info}
  - {name: a7, kind: threshold, window: 60m, agg: rate_per_hour, op: ">", threshold: 0.3, severity: info}
`},
	{"event minimal", rulesFile(`name: e
    kind: event
    severity: critical
    resolve_after: 15m
`)},
	{"event every key", rulesFile(`name: camera_fire
    kind: event
    summary: "Camera {{source}} phát hiện {{type}} ({{value}})"
    category: security
    subCategory: buildingFire
    labels: {team: pccc}
    match: {kind: camera, type: [fire, smoke]}
    group_by: [source, type]
    when: ["confidence >= 0.8", "attrs.priority == urgent", "attrs.zone != 'b'", "x<1"]
    severity: critical
    resolve_after: 1h30m
`)},
	{"absence minimal", rulesFile(`name: s
    kind: absence
    severity: info
    after: 30m
`)},
	{"absence every key", rulesFile(`name: silent_sensor
    kind: absence
    summary: "Trạm {{source}} không gửi dữ liệu"
    category: environment
    subCategory: airPollution
    labels: {owner: sotnmt}
    match: {kind: environment, source: "wl-*"}
    severity: warning
    after: 90s
`)},
	{"summary with spaced placeholders and plain braces", rulesFile(`name: s
    kind: absence
    summary: "{x} {{ source }} }} {{area_name}}{{value}} {"
    severity: info
    after: 1h0m
`)},
	{"window with zero seconds", rulesFile(`name: t
    kind: threshold
    window: 1h0m0s
    agg: max
    op: ">"
    threshold: 1
    severity: info
`)},
	{"anchors and aliases", `rules:
  - {name: a, kind: absence, labels: &team {team: pccc}, match: &cams {kind: camera}, after: 5m, severity: info}
  - {name: b, kind: event, labels: *team, match: *cams, severity: info, resolve_after: 5m}
`},
	{"no rules", "rules: []\n"},
}

func TestSchemaGoodRules(t *testing.T) {
	sch := compileRulesSchema(t)
	for _, tt := range goodRuleFiles {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(sch, tt.file); err != nil {
				t.Errorf("schema rejects: %v", err)
			}
			if _, err := alert.ParseRules([]byte(tt.file)); err != nil {
				t.Errorf("parser rejects: %v", err)
			}
		})
	}
}

// A single-threshold rule to break one key at a time.
const baseThreshold = `name: t
    kind: threshold
    window: 10m
    agg: max
    op: ">"
    threshold: 1
    severity: info
`

var badRuleFiles = []struct{ name, file string }{
	// the file
	{name: "empty file", file: ""},
	{name: "no rules key", file: "alerts: []\n"},
	{name: "unknown top-level key", file: "rules: []\nversion: 1\n"},
	{name: "rules not a list", file: "rules: {name: a}\n"},
	{name: "rule not a mapping", file: "rules:\n  - river\n"},

	// keys
	{name: "unknown key", file: rulesFile(baseThreshold + "    colour: red\n")},
	{name: "unknown match key", file: rulesFile(baseThreshold + "    match: {sensor: x}\n")},
	{name: "unknown level key", file: rulesFile(`name: t
    kind: threshold
    window: 10m
    agg: max
    op: ">"
    levels: [{threshold: 1, severity: info, colour: red}]
`)},
	{name: "match not globs", file: rulesFile(baseThreshold + "    match: {kind: {a: b}}\n")},
	{name: "labels not a map", file: rulesFile(baseThreshold + "    labels: [a, b]\n")},

	// name and kind
	{name: "missing name", file: "rules:\n  - {kind: absence, after: 1m, severity: info}\n"},
	{name: "bad name", file: "rules:\n  - {name: Bad-Name, kind: absence, after: 1m, severity: info}\n"},
	{name: "name too long", file: "rules:\n  - {name: a2345678901234567890123456789012345678901234567890123456789012345, kind: absence, after: 1m, severity: info}\n"},
	{name: "missing kind", file: "rules:\n  - {name: a, after: 1m, severity: info}\n"},
	{name: "unknown kind", file: "rules:\n  - {name: a, kind: rate, after: 1m, severity: info}\n"},

	// threshold rules
	{name: "threshold and levels together", file: rulesFile(baseThreshold + "    levels: [{threshold: 2, severity: warning}]\n")},
	{name: "threshold without severity", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: 1\n")},
	{name: "neither threshold nor levels", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    severity: info\n")},
	{name: "empty levels", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    levels: []\n")},
	{name: "level without threshold", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    levels: [{severity: info}]\n")},
	{name: "level bad severity", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    levels: [{threshold: 1, severity: severe}]\n")},
	{name: "missing window", file: rulesFile("name: t\n    kind: threshold\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "missing agg", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "missing op", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    threshold: 1\n    severity: info\n")},
	{name: "window not whole minutes", file: rulesFile("name: t\n    kind: threshold\n    window: 90s\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "window under a minute", file: rulesFile("name: t\n    kind: threshold\n    window: 30s\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "window not a duration", file: rulesFile("name: t\n    kind: threshold\n    window: 10 minutes\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "window in days", file: rulesFile("name: t\n    kind: threshold\n    window: 1d\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "bad agg", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: median\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "bad op", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \"=>\"\n    threshold: 1\n    severity: info\n")},
	{name: "equality op", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \"==\"\n    threshold: 1\n    severity: info\n")},
	{name: "bad severity", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: severe\n")},
	{name: "threshold not a number", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: high\n    severity: info\n")},
	{name: "bad for", file: rulesFile(baseThreshold + "    for: 5 min\n")},
	{name: "negative for", file: rulesFile(baseThreshold + "    for: -5m\n")},
	{name: "bad group_by", file: rulesFile(baseThreshold + "    group_by: [city]\n")},
	{name: "early with avg", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: avg\n    op: \">\"\n    threshold: 1\n    severity: info\n    early: true\n")},
	{name: "early with max below", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \"<\"\n    threshold: 1\n    severity: info\n    early: true\n")},
	{name: "early with min above", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: min\n    op: \">=\"\n    threshold: 1\n    severity: info\n    early: true\n")},
	{name: "bad active_hours", file: rulesFile(baseThreshold + "    active_hours: evenings\n")},
	{name: "active_hours out of range", file: rulesFile(baseThreshold + "    active_hours: \"21:00-24:00\"\n")},

	// event rules
	{name: "event without resolve_after", file: "rules:\n  - {name: e, kind: event, severity: info}\n"},
	{name: "event without severity", file: "rules:\n  - {name: e, kind: event, resolve_after: 15m}\n"},
	{name: "event bad resolve_after", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: soon}\n"},
	{name: "event bad condition", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, when: [confidence is high]}\n"},
	{name: "event condition without op", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, when: [confidence]}\n"},
	{name: "event bad group_by", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, group_by: [metric]}\n"},

	// absence rules
	{name: "absence without after", file: "rules:\n  - {name: s, kind: absence, severity: info}\n"},
	{name: "absence without severity", file: "rules:\n  - {name: s, kind: absence, after: 30m}\n"},
	{name: "absence bad after", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 30}\n"},

	// values of the wrong YAML type, which decoding alone would take
	{name: "null value", file: rulesFile(baseThreshold + "    summary:\n")},
	{name: "number for text", file: rulesFile(baseThreshold + "    category: 42\n")},
	{name: "boolean name", file: "rules:\n  - {name: true, kind: absence, after: 1m, severity: info}\n"},
	{name: "number label", file: rulesFile(baseThreshold + "    labels: {gauge: 1}\n")},
	{name: "number glob", file: rulesFile(baseThreshold + "    match: {type: [1]}\n")},
	{name: "null glob", file: rulesFile(baseThreshold + "    match: {type: ~}\n")},
	{name: "number level name", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    levels: [{threshold: 1, severity: info, name: 2}]\n")},
	{name: "yes for true", file: rulesFile(baseThreshold + "    early: yes\n")},
	{name: "quoted threshold", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: \"1\"\n    severity: info\n")},
	{name: "infinite threshold", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    threshold: .inf\n    severity: info\n")},
	{name: "null clear", file: rulesFile(baseThreshold + "    clear: ~\n")},
	{name: "bare number duration", file: rulesFile(baseThreshold + "    for: 0\n")},
	{name: "null group_by", file: rulesFile(baseThreshold + "    group_by:\n")},
	{name: "repeated key", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m, after: 10m}\n"},
	{name: "repeated rules key", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m}\nrules: []\n"},

	// values the schema's patterns refuse
	{name: "zero window", file: rulesFile("name: t\n    kind: threshold\n    window: 0m\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "window in seconds", file: rulesFile("name: t\n    kind: threshold\n    window: 3600s\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "window in fractional hours", file: rulesFile("name: t\n    kind: threshold\n    window: 0.5h\n    agg: max\n    op: \">\"\n    threshold: 1\n    severity: info\n")},
	{name: "zero resolve_after", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 0s}\n"},
	{name: "zero after", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 0s}\n"},
	{name: "negative zero after", file: "rules:\n  - {name: s, kind: absence, severity: info, after: -0s}\n"},
	{name: "negative zero for", file: rulesFile(baseThreshold + "    for: -0s\n")},
	{name: "signed for", file: rulesFile(baseThreshold + "    for: +5m\n")},
	{name: "one-digit hour", file: rulesFile(baseThreshold + "    active_hours: \"6:00-21:00\"\n")},
	{name: "spaced active_hours", file: rulesFile(baseThreshold + "    active_hours: \"06:00 - 21:00\"\n")},
	{name: "empty active_hours", file: rulesFile(baseThreshold + "    active_hours: \"\"\n")},
	{name: "unknown placeholder", file: rulesFile(baseThreshold + "    summary: \"{{value}} at {{station}}\"\n")},
	{name: "unclosed placeholder", file: rulesFile(baseThreshold + "    summary: \"{{value} m\"\n")},
	{name: "empty placeholder", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m, summary: \"{{ }}\"}\n"},

	// threshold rules: threshold, severity and levels
	{name: "severity with levels", file: rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    severity: info\n    levels: [{threshold: 2, severity: warning}]\n")},
	{name: "empty levels with threshold", file: rulesFile(baseThreshold + "    levels: []\n")},

	// keys of another kind
	{name: "threshold key on an event rule", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, window: 10m}\n"},
	{name: "zero-valued threshold key on an event rule", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, early: false}\n"},
	{name: "event key on a threshold rule", file: rulesFile(baseThreshold + "    when: [\"confidence > 1\"]\n")},
	{name: "empty event key on a threshold rule", file: rulesFile(baseThreshold + "    when: []\n")},
	{name: "absence key on an event rule", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, after: 5m}\n"},
	{name: "event key on an absence rule", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m, resolve_after: 5m}\n"},
	{name: "group_by on an absence rule", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m, group_by: [area]}\n"},
	{name: "metric on an absence rule", file: "rules:\n  - {name: s, kind: absence, severity: info, after: 5m, match: {kind: environment, metric: height}}\n"},
	{name: "duplicate group_by field", file: rulesFile(baseThreshold + "    group_by: [source, source]\n")},
	{name: "condition on a dotted non-attrs field", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, when: [\"location.lat > 16\"]}\n"},
	{name: "condition on a long field", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, when: [\"attrs.a234567890123456789012345678901234567890123456789 == x\"]}\n"},
	{name: "condition on a field starting with a digit", file: "rules:\n  - {name: e, kind: event, severity: info, resolve_after: 1m, when: [\"2x > 1\"]}\n"},
}

// The summary pattern of the schema must list exactly the placeholders
// the engine fills.
func TestSchemaPlaceholders(t *testing.T) {
	data, err := os.ReadFile(rulesSchema)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Summary struct{ Pattern string } `json:"summary"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\\s\*\(\?:([a-z_|]+)\)\\s\*`).FindStringSubmatch(doc.Defs.Summary.Pattern)
	if m == nil {
		t.Fatalf("no placeholder list in the summary pattern %q", doc.Defs.Summary.Pattern)
	}
	if got, want := m[1], strings.Join(alert.Placeholders, "|"); got != want {
		t.Errorf("summary pattern lists %s, engine.go has %s", got, want)
	}
}

func TestSchemaBadRules(t *testing.T) {
	sch := compileRulesSchema(t)
	for _, tt := range badRuleFiles {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(sch, tt.file); err == nil {
				t.Errorf("schema accepts:\n%s", tt.file)
			}
			if _, err := alert.ParseRules([]byte(tt.file)); err == nil {
				t.Errorf("parser accepts:\n%s", tt.file)
			}
		})
	}
}

// What a JSON Schema cannot express: the schema accepts these, only
// ParseRules (and so `iocd rules check`) rejects them.
var parserOnlyRuleFiles = []struct{ name, file string }{
	{"duplicate rule name", "rules:\n  - {name: a, kind: absence, after: 1m, severity: info}\n  - {name: a, kind: absence, after: 2m, severity: info}\n"},
	{"ladder out of order", rulesFile("name: t\n    kind: threshold\n    window: 10m\n    agg: max\n    op: \">\"\n    levels: [{threshold: 2, severity: info}, {threshold: 1, severity: warning}]\n")},
	{"clear on the wrong side", rulesFile(baseThreshold + "    clear: 2\n")},
	{"invalid glob", rulesFile(baseThreshold + "    match: {source: \"wl-[\"}\n")},
	{"empty active_hours interval", rulesFile(baseThreshold + "    active_hours: \"06:00-06:00\"\n")},
}

func TestSchemaParserOnlyChecks(t *testing.T) {
	sch := compileRulesSchema(t)
	for _, tt := range parserOnlyRuleFiles {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(sch, tt.file); err != nil {
				t.Errorf("schema rejects (move the case to badRuleFiles): %v", err)
			}
			if _, err := alert.ParseRules([]byte(tt.file)); err == nil {
				t.Errorf("parser accepts:\n%s", tt.file)
			}
		})
	}
}
