package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rule kinds of the rules file.
const (
	KindThreshold = "threshold"
	KindEvent     = "event"
	KindAbsence   = "absence"
)

// Aggregates a threshold rule can evaluate over its window.
var aggregates = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"last": true, "rate_per_hour": true}

// Rule is one validated rule of the rules file.
type Rule struct {
	Name        string
	Kind        string
	Summary     string
	Category    string
	SubCategory string
	Labels      map[string]string
	Match       Match
	GroupBy     []string
	Line        int // where the rule starts in the file

	// threshold
	Window    time.Duration
	Agg       string
	Threshold Threshold
	Early     bool
	Active    *Hours

	// event
	When         []Condition
	Severity     Severity
	ResolveAfter time.Duration

	// absence
	After time.Duration
}

// groupBy is the rule's group_by with each kind's default, decided here
// once: a threshold rule groups as the file says (nothing: one group for
// the engine's scope), an event rule by source unless the file says
// otherwise, an absence rule always by source (it watches each source).
func (r Rule) groupBy() []string {
	switch {
	case r.Kind == KindAbsence:
		return []string{"source"}
	case r.Kind == KindEvent && len(r.GroupBy) == 0:
		return []string{"source"}
	}
	return r.GroupBy
}

// Match selects events by kind, type, metric, area and source; each is a
// list of globs (path.Match syntax), empty = any.
type Match struct {
	Kind, Type, Metric, Area, Source []string
}

// Condition compares a metric or attr of an event with a value.
type Condition struct {
	Field string // metric name, or attrs.<key>
	Op    string // >, >=, <, <=, ==, !=
	Value string
}

// Hours is a daily interval in local time (Asia/Ho_Chi_Minh); End may be
// before Start to span midnight.
type Hours struct {
	Start, End time.Duration // since midnight
}

// RuleError is one problem of a rules file, with its line.
type RuleError struct {
	Line int
	Msg  string
}

// Errors lists every problem of a rules file.
type Errors []RuleError

func (e Errors) Error() string {
	var b strings.Builder
	for i, re := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "line %d: %s", re.Line, re.Msg)
	}
	return b.String()
}

// ruleDoc is the YAML shape of one rule.
type ruleDoc struct {
	Name         string            `yaml:"name"`
	Kind         string            `yaml:"kind"`
	Summary      string            `yaml:"summary"`
	Category     string            `yaml:"category"`
	SubCategory  string            `yaml:"subCategory"`
	Labels       map[string]string `yaml:"labels"`
	Match        matchDoc          `yaml:"match"`
	GroupBy      []string          `yaml:"group_by"`
	Window       string            `yaml:"window"`
	Agg          string            `yaml:"agg"`
	Op           string            `yaml:"op"`
	Threshold    *float64          `yaml:"threshold"`
	Levels       []levelDoc        `yaml:"levels"`
	Clear        *float64          `yaml:"clear"`
	For          string            `yaml:"for"`
	Early        bool              `yaml:"early"`
	ActiveHours  string            `yaml:"active_hours"`
	When         []string          `yaml:"when"`
	Severity     string            `yaml:"severity"`
	ResolveAfter string            `yaml:"resolve_after"`
	After        string            `yaml:"after"`
}

type levelDoc struct {
	Threshold *float64 `yaml:"threshold"`
	Severity  string   `yaml:"severity"`
	Name      string   `yaml:"name"`
}

// matchDoc accepts a single string or a list for each selector.
type matchDoc struct {
	Kind   stringList `yaml:"kind"`
	Type   stringList `yaml:"type"`
	Metric stringList `yaml:"metric"`
	Area   stringList `yaml:"area"`
	Source stringList `yaml:"source"`
}

type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

var (
	ruleName   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	severities = map[string]Severity{"info": Info, "warning": Warning, "critical": Critical}
	// condition splits "field op value"; the field is checked on its own
	// (conditionField) so that a wrong one gets its own message.
	condition = regexp.MustCompile(`^\s*([^\s<>=!]+)\s*(>=|<=|==|!=|>|<)\s*(\S.*?)\s*$`)
	// conditionField: a metric name or attrs.<key>, as internal/event
	// accepts them (1-48 characters).
	conditionField = regexp.MustCompile(`^(attrs\.)?[A-Za-z][A-Za-z0-9_]{0,47}$`)
	// windowForm: whole minutes written with h and m only (10m, 1h30m).
	windowForm  = regexp.MustCompile(`^([0-9]+h([0-9]+m)?|[0-9]+m)(0+s)?$`)
	hoursForm   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$`)
	minWindow   = time.Minute
	groupFields = map[string]bool{"area": true, "source": true, "type": true}
	selectors   = []string{"kind", "type", "metric", "area", "source"}
)

// ParseRules reads a rules file and returns its rules, or every problem
// found with its line.
func ParseRules(data []byte) ([]Rule, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{1, "the file is empty; it needs a top-level 'rules:' list"}}
		}
		return nil, Errors{{yamlLine(err, 1), "not valid YAML: " + yamlMsg(err)}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, Errors{{doc.Line, "the top level must be a mapping with a 'rules:' list"}}
	}
	var list *yaml.Node
	var rulesLine int
	var errs Errors
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch {
		case k.Value == "rules" && list != nil:
			errs = append(errs, RuleError{k.Line, fmt.Sprintf("'rules:' is given twice (first on line %d): put every rule in one list", rulesLine)})
		case k.Value == "rules":
			list, rulesLine = deref(v), k.Line
		default:
			errs = append(errs, RuleError{k.Line, fmt.Sprintf("unknown top-level key %q (only 'rules')", k.Value)})
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, append(errs, RuleError{doc.Line, "'rules:' must be a list of rules"})
	}
	var rules []Rule
	names := map[string]int{}
	for _, n := range list.Content {
		r, rerrs := parseRule(n)
		errs = append(errs, rerrs...)
		if len(rerrs) > 0 {
			continue
		}
		if first, dup := names[r.Name]; dup {
			errs = append(errs, RuleError{n.Line, fmt.Sprintf("rule name %q is already used on line %d", r.Name, first)})
			continue
		}
		names[r.Name] = n.Line
		rules = append(rules, r)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return rules, nil
}

// shape is what the YAML value of a key must look like.
type shape int

const (
	text      shape = iota // free text: a YAML string (a bare 42 or true is not one)
	word                   // one scalar, checked later against its values or pattern
	duration               // a Go duration, as a string
	number                 // a finite YAML number
	boolean                // true or false
	labelMap               // name: text
	matchMap               // selector: glob or list of globs
	wordList               // a list of scalars
	levelList              // a list of {threshold, severity, name}
)

// ruleKeys lists every key of a rule in the order of the documentation,
// with its shape.
var ruleKeys = []struct {
	key   string
	shape shape
}{
	{"name", text}, {"kind", word}, {"summary", text}, {"category", text}, {"subCategory", text},
	{"labels", labelMap}, {"match", matchMap}, {"group_by", wordList},
	{"window", duration}, {"agg", word}, {"op", word}, {"threshold", number}, {"severity", word},
	{"levels", levelList}, {"clear", number}, {"for", duration}, {"early", boolean}, {"active_hours", word},
	{"when", wordList}, {"resolve_after", duration}, {"after", duration},
}

// commonKeys apply to every kind of rule; kindKeys are the others a kind
// takes (what the engine reads for that kind).
var (
	commonKeys = []string{"name", "kind", "summary", "category", "subCategory", "labels", "match"}
	kindKeys   = map[string][]string{
		KindThreshold: {"window", "agg", "op", "threshold", "severity", "levels", "clear", "for", "early",
			"active_hours", "group_by"},
		KindEvent:   {"when", "severity", "resolve_after", "group_by"},
		KindAbsence: {"severity", "after"},
	}
)

func shapeOf(key string) (shape, bool) {
	for _, k := range ruleKeys {
		if k.key == key {
			return k.shape, true
		}
	}
	return 0, false
}

func applies(kind, key string) bool {
	return slices.Contains(commonKeys, key) || slices.Contains(kindKeys[kind], key)
}

// aKind is "a threshold rule", "an event rule", "an absence rule".
func aKind(kind string) string {
	if kind == KindThreshold {
		return "a threshold rule"
	}
	return "an " + kind + " rule"
}

func parseRule(n *yaml.Node) (Rule, Errors) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return Rule{}, Errors{{n.Line, "each rule must be a mapping"}}
	}
	// First the shape: keys that exist and apply to the kind, values of the
	// right YAML type. Only a rule of the right shape is decoded.
	if errs := checkShape(n); len(errs) > 0 {
		return Rule{}, errs
	}
	var d ruleDoc
	if err := n.Decode(&d); err != nil {
		// checkShape lets nothing through that fails here; just in case.
		return Rule{}, Errors{{yamlLine(err, n.Line), yamlMsg(err)}}
	}

	var errs Errors
	add := func(key, format string, args ...any) {
		errs = append(errs, RuleError{keyLine(n, key), fmt.Sprintf(format, args...)})
	}
	has := func(key string) bool { _, v := lookup(n, key); return v != nil }
	r := Rule{Name: d.Name, Kind: d.Kind, Summary: d.Summary, Category: d.Category, SubCategory: d.SubCategory,
		Labels: d.Labels, GroupBy: d.GroupBy, Line: n.Line, Early: d.Early,
		Match: Match{Kind: d.Match.Kind, Type: d.Match.Type, Metric: d.Match.Metric, Area: d.Match.Area, Source: d.Match.Source}}
	switch {
	case !has("name"):
		add("name", "name is required")
	case !ruleName.MatchString(d.Name):
		add("name", "name %q must be 1-64 characters of [a-z0-9_], starting with a letter", d.Name)
	}
	if _, m := lookup(n, "match"); m != nil {
		globs := [][]string{r.Match.Kind, r.Match.Type, r.Match.Metric, r.Match.Area, r.Match.Source}
		for i, sel := range selectors {
			for _, g := range globs[i] {
				if _, err := path.Match(g, ""); err != nil {
					errs = append(errs, RuleError{keyLine(m, sel), fmt.Sprintf("match %s pattern %q is not a valid glob", sel, g)})
				}
			}
		}
	}
	seenGroup := map[string]bool{}
	for _, g := range d.GroupBy {
		switch {
		case !groupFields[g]:
			add("group_by", "group_by %q must be area, source or type", g)
		case seenGroup[g]:
			add("group_by", "group_by lists %q twice", g)
		}
		seenGroup[g] = true
	}
	if msg := checkSummary(d.Summary); msg != "" {
		add("summary", "%s", msg)
	}
	// dur reads a duration key; positive: it must be > 0, else >= 0.
	dur := func(key, v string, required, positive bool) time.Duration {
		if !has(key) {
			if required {
				add(key, "%s is required for %s", key, aKind(d.Kind))
			}
			return 0
		}
		x, err := time.ParseDuration(v)
		switch {
		case err != nil:
			add(key, "%s %q is not a duration like 90s, 10m or 1h", key, v)
		case positive && x <= 0:
			add(key, "%s %q must be more than 0, like 15m", key, v)
		case x < 0:
			add(key, "%s %q must not be negative", key, v)
		case v[0] == '+' || v[0] == '-':
			add(key, "%s %q must be written without a sign", key, v)
		}
		return x
	}
	severity := func(key, v string) Severity {
		if !has(key) {
			add(key, "severity is required for %s: info, warning or critical", aKind(d.Kind))
			return ""
		}
		s, ok := severities[v]
		if !ok {
			add(key, "severity %q must be info, warning or critical", v)
		}
		return s
	}
	switch d.Kind {
	case KindThreshold:
		r.Window = parseWindow(d.Window, has("window"), func(format string, args ...any) { add("window", format, args...) })
		switch {
		case !has("agg"):
			add("agg", "agg is required for a threshold rule: count, sum, avg, min, max, last or rate_per_hour")
		case !aggregates[d.Agg]:
			add("agg", "agg %q must be one of count, sum, avg, min, max, last, rate_per_hour", d.Agg)
		}
		r.Agg = d.Agg
		r.Threshold = Threshold{Op: Op(d.Op), Clear: d.Clear, For: dur("for", d.For, false, false)}
		opOK := false
		switch _, v := lookup(n, "op"); {
		case v == nil:
			add("op", `op is required for a threshold rule: >, >=, < or <=, in quotes (op: ">=")`)
		case v.Style&(yaml.FoldedStyle|yaml.LiteralStyle) != 0:
			add("op", `op must be quoted (op: ">"): an unquoted > or | starts a YAML block`)
		case !r.Threshold.Op.valid():
			add("op", "op %q is not one of >, >=, <, <=", d.Op)
		default:
			opOK = true
		}
		ladderOK := true
		switch {
		case has("levels") && (has("threshold") || has("severity")):
			var both []string
			for _, k := range []string{"threshold", "severity"} {
				if has(k) {
					both = append(both, fmt.Sprintf("%s on line %d", k, keyLine(n, k)))
				}
			}
			add("levels", "give either threshold with severity, or levels, not both (%s); each level has its own severity",
				strings.Join(both, ", "))
			ladderOK = false
		case has("levels"):
			if len(d.Levels) == 0 {
				add("levels", "levels is empty: give at least one {threshold, severity}")
				ladderOK = false
			}
			_, lv := lookup(n, "levels")
			for i, l := range d.Levels {
				item := deref(lv.Content[i])
				if l.Threshold == nil {
					errs = append(errs, RuleError{item.Line, fmt.Sprintf("level %d needs a threshold", i+1)})
					ladderOK = false
					continue
				}
				sev, ok := severities[l.Severity]
				if !ok {
					msg := fmt.Sprintf("level %d severity %q must be info, warning or critical", i+1, l.Severity)
					if l.Severity == "" {
						msg = fmt.Sprintf("level %d needs a severity: info, warning or critical", i+1)
					}
					errs = append(errs, RuleError{keyLine(item, "severity"), msg})
					ladderOK = false
				}
				r.Threshold.Levels = append(r.Threshold.Levels, Level{Threshold: *l.Threshold, Severity: sev, Name: l.Name})
			}
		case has("threshold") && has("severity"):
			s := severity("severity", d.Severity)
			ladderOK = s != ""
			r.Threshold.Levels = []Level{{Threshold: *d.Threshold, Severity: s}}
		case has("threshold"):
			add("threshold", "threshold needs a severity: info, warning or critical")
			ladderOK = false
		case has("severity"):
			add("severity", "severity needs a threshold (or use levels, each with its own severity)")
			ladderOK = false
		default:
			add("threshold", "a threshold rule needs threshold and severity, or levels")
			ladderOK = false
		}
		if opOK && ladderOK {
			if err := r.Threshold.Validate(); err != nil {
				add("op", "%v", err)
			}
		}
		if r.Early && opOK && aggregates[r.Agg] && !monotone(r.Agg, r.Threshold.Op) {
			add("early", "early: true needs an aggregate a partial pane can only push further past the threshold "+
				"(max, sum or count with > or >=; min with < or <=), so a partial result never fires an alert the final pane would not")
		}
		if has("active_hours") {
			h, err := parseHours(d.ActiveHours)
			if err != nil {
				add("active_hours", "%v", err)
			}
			r.Active = &h
		}
	case KindEvent:
		r.Severity = severity("severity", d.Severity)
		r.ResolveAfter = dur("resolve_after", d.ResolveAfter, true, true)
		_, wv := lookup(n, "when")
		for i, w := range d.When {
			line := deref(wv.Content[i]).Line
			m := condition.FindStringSubmatch(w)
			switch {
			case m == nil:
				errs = append(errs, RuleError{line, fmt.Sprintf("condition %q must look like 'confidence >= 0.8' or 'attrs.priority == urgent'", w)})
			case !conditionField.MatchString(m[1]):
				errs = append(errs, RuleError{line, fmt.Sprintf("condition %q: a condition can use a metric of the event "+
					"(a name of letters, digits and _ starting with a letter, e.g. confidence) or one of its attrs "+
					"(attrs.<key>, e.g. attrs.priority), up to 48 characters, not %q", w, m[1])})
			default:
				r.When = append(r.When, Condition{Field: m[1], Op: m[2], Value: strings.Trim(m[3], `"'`)})
			}
		}
	case KindAbsence:
		r.Severity = severity("severity", d.Severity)
		r.After = dur("after", d.After, true, true)
	case "":
		add("kind", "kind is required: threshold, event or absence")
	default:
		add("kind", "kind %q must be threshold, event or absence", d.Kind)
	}
	return r, errs
}

// parseWindow reads a threshold rule's window: whole minutes, at least
// one, written with h and m.
func parseWindow(v string, given bool, fail func(format string, args ...any)) time.Duration {
	if !given {
		fail("window is required for a threshold rule, e.g. 10m")
		return 0
	}
	x, err := time.ParseDuration(v)
	switch {
	case err != nil:
		fail("window %q is not a duration like 10m, 60m or 1h30m", v)
	case x <= 0:
		fail("window %q must be at least 1m", v)
	case x%minWindow != 0:
		fail("window %s must be a whole number of minutes (the 1-minute pane)", x)
	case !windowForm.MatchString(v):
		fail("window %q must be written in whole minutes or hours with m and h, like 10m, 90m or 1h30m", v)
	default:
		return x
	}
	return 0
}

// checkShape checks the keys of a rule mapping (known, given once,
// applying to the rule's kind) and the YAML type of their values: what
// decoding into ruleDoc would silently accept (a key of another kind, a
// number or a null for a string, yes for true) or reject without a good
// line.
func checkShape(n *yaml.Node) Errors {
	var errs Errors
	fail := func(line int, format string, args ...any) {
		errs = append(errs, RuleError{line, fmt.Sprintf(format, args...)})
	}
	kind := ""
	if _, v := lookup(n, "kind"); v != nil && v.Kind == yaml.ScalarNode {
		kind = v.Value
	}
	_, knownKind := kindKeys[kind]
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := k.Value
		if first, dup := seen[key]; dup {
			fail(k.Line, "%s is given twice (first on line %d)", key, first)
			continue
		}
		seen[key] = k.Line
		sh, known := shapeOf(key)
		switch {
		case key == "<<":
			fail(k.Line, "YAML merge keys (<<) are not supported in a rule: write its keys out")
			continue
		case !known:
			fail(k.Line, "unknown key %q; %s", key, takes(kind))
			continue
		case knownKind && key == "group_by" && kind == KindAbsence:
			fail(k.Line, "group_by does not apply to an absence rule: an absence rule always alerts per source")
			continue
		case knownKind && !applies(kind, key):
			fail(k.Line, "%s does not apply to %s (its own keys are %s)", key, aKind(kind), strings.Join(kindKeys[kind], ", "))
			continue
		}
		checkValue(key, k.Line, sh, v, fail)
		if key == "match" && kind == KindAbsence && v.Kind == yaml.MappingNode {
			if mk, _ := lookup(v, "metric"); mk != nil {
				fail(mk.Line, "match.metric does not apply to an absence rule: absence rules watch sources, not metrics "+
					"(select them with match kind, type, area or source)")
			}
		}
	}
	return errs
}

// takes lists the keys a kind of rule takes, for messages.
func takes(kind string) string {
	keys, ok := kindKeys[kind]
	if !ok {
		all := make([]string, len(ruleKeys))
		for i, k := range ruleKeys {
			all[i] = k.key
		}
		return "the keys of a rule are " + strings.Join(all, ", ")
	}
	return aKind(kind) + " takes " + strings.Join(append(slices.Clone(commonKeys), keys...), ", ")
}

// checkValue checks the YAML type of the value v of what (a key, or e.g.
// "label \"river\"") on line.
func checkValue(what string, line int, sh shape, v *yaml.Node, fail func(int, string, ...any)) {
	v = deref(v)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		fail(line, "%s has no value: give one or leave the key out", what)
		return
	}
	switch sh {
	case text, word, duration:
		if v.Kind != yaml.ScalarNode {
			fail(line, "%s must be a single value, not a %s", what, nodeKind(v))
			return
		}
		tag := v.ShortTag()
		if tag != "!!int" && tag != "!!float" && tag != "!!bool" {
			return
		}
		switch sh {
		case text:
			fail(line, "%s must be text: %s reads as a %s in YAML, so put it in quotes", what, v.Value, tagName(tag))
		case duration:
			fail(line, "%s %s is not a duration: give it a unit, like 90s, 10m or 1h", what, v.Value)
		}
		// A word is checked against its values later (agg: 1 is no agg).
	case number:
		tag := v.ShortTag()
		if v.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" {
			fail(line, "%s must be a number, not %s", what, describe(v))
			return
		}
		var f float64
		if err := v.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			fail(line, "%s must be a finite number, not %s", what, v.Value)
		}
	case boolean:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
			fail(line, "%s must be true or false, not %s", what, describe(v))
		}
	case labelMap:
		if v.Kind != yaml.MappingNode {
			fail(line, "%s must be a mapping of names to text, like {river: huong}, not %s", what, describe(v))
			return
		}
		eachPair(v, fail, "label", func(k, val *yaml.Node) {
			checkValue(fmt.Sprintf("label %q", k.Value), k.Line, text, val, fail)
		})
	case matchMap:
		if v.Kind != yaml.MappingNode {
			fail(line, "%s must be a mapping of selectors, like {kind: camera, type: [fire, smoke]}, not %s", what, describe(v))
			return
		}
		eachPair(v, fail, "match selector", func(k, val *yaml.Node) {
			if !slices.Contains(selectors, k.Value) {
				fail(k.Line, "unknown match key %q (kind, type, metric, area or source)", k.Value)
				return
			}
			what := "match " + k.Value
			if val = deref(val); val.Kind == yaml.SequenceNode {
				for _, g := range val.Content {
					checkValue(what+" item", deref(g).Line, text, g, fail)
				}
				return
			}
			if val.Kind != yaml.ScalarNode {
				fail(k.Line, "%s must be a glob or a list of globs, not %s", what, describe(val))
				return
			}
			checkValue(what, k.Line, text, val, fail)
		})
	case wordList:
		if v.Kind != yaml.SequenceNode {
			example := map[string]string{"group_by": "[area, source]", "when": `["confidence >= 0.8"]`}[what]
			fail(line, "%s must be a list, like %s, not %s", what, example, describe(v))
			return
		}
		for _, item := range v.Content {
			checkValue(what+" item", deref(item).Line, word, item, fail)
		}
	case levelList:
		if v.Kind != yaml.SequenceNode {
			fail(line, "%s must be a list of levels, like [{threshold: 2.0, severity: warning}], not %s", what, describe(v))
			return
		}
		for i, item := range v.Content {
			item = deref(item)
			if item.Kind != yaml.MappingNode {
				fail(item.Line, "level %d must be a mapping like {threshold: 2.0, severity: warning, name: báo động 2}, not %s",
					i+1, describe(item))
				continue
			}
			eachPair(item, fail, fmt.Sprintf("level %d key", i+1), func(k, val *yaml.Node) {
				what := fmt.Sprintf("level %d %s", i+1, k.Value)
				switch k.Value {
				case "threshold":
					checkValue(what, k.Line, number, val, fail)
				case "severity":
					checkValue(what, k.Line, word, val, fail)
				case "name":
					checkValue(what, k.Line, text, val, fail)
				default:
					fail(k.Line, "unknown level key %q (threshold, severity or name)", k.Value)
				}
			})
		}
	}
}

// eachPair calls f for each key of a mapping given once, reporting the
// repeated ones.
func eachPair(m *yaml.Node, fail func(int, string, ...any), what string, f func(k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if first, dup := seen[k.Value]; dup {
			fail(k.Line, "%s %q is given twice (first on line %d)", what, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		f(k, m.Content[i+1])
	}
}

func nodeKind(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

func tagName(tag string) string {
	switch tag {
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	}
	return strings.TrimPrefix(tag, "!!")
}

// describe names a value for messages: 'a list', 'the text "x"', '42'.
func describe(v *yaml.Node) string {
	switch {
	case v.Kind != yaml.ScalarNode:
		return "a " + nodeKind(v)
	case v.ShortTag() == "!!str":
		return fmt.Sprintf("the text %q", v.Value)
	}
	return v.Value
}

// lookup finds key in a mapping: the key node and its value (aliases
// followed), or nils.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], deref(m.Content[i+1])
		}
	}
	return nil, nil
}

// deref follows an alias (*name) to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// monotone reports whether adding events to a pane can only move agg in
// the direction op alerts on.
func monotone(agg string, op Op) bool {
	switch agg {
	case "max", "sum", "count":
		return op.rising()
	case "min":
		return !op.rising()
	}
	return false
}

var lineRe = regexp.MustCompile(`line (\d+): `)

// yamlLine finds the line an error of yaml.v3 names (def when none).
func yamlLine(err error, def int) int {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		var n int
		fmt.Sscanf(m[1], "%d", &n)
		return n
	}
	return def
}

// yamlMsg strips yaml.v3's own prefixes so the line is said once.
func yamlMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	return lineRe.ReplaceAllString(msg, "")
}

// keyLine is the line of key in a rule mapping, or the rule's line.
func keyLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// parseHours reads "06:00-21:00".
func parseHours(s string) (Hours, error) {
	if !hoursForm.MatchString(s) {
		return Hours{}, fmt.Errorf("active_hours %q must look like 06:00-21:00 (HH:MM-HH:MM, local time)", s)
	}
	from, to, _ := strings.Cut(s, "-")
	a, err1 := time.Parse("15:04", from)
	b, err2 := time.Parse("15:04", to)
	if err1 != nil || err2 != nil {
		return Hours{}, fmt.Errorf("active_hours %q must look like 06:00-21:00 (HH:MM-HH:MM, local time)", s)
	}
	if a.Equal(b) {
		return Hours{}, fmt.Errorf("active_hours %q starts and ends at the same time", s)
	}
	since := func(t time.Time) time.Duration {
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	return Hours{Start: since(a), End: since(b)}, nil
}
