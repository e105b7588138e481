package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	Op    Op     // >, >=, <, <=, ==, !=
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
	p := &ruleParser{n: n}
	if err := n.Decode(&p.d); err != nil {
		// checkShape lets nothing through that fails here; just in case.
		return Rule{}, Errors{{yamlLine(err, n.Line), yamlMsg(err)}}
	}
	d := &p.d
	r := Rule{Name: d.Name, Kind: d.Kind, Summary: d.Summary, Category: d.Category, SubCategory: d.SubCategory,
		Labels: d.Labels, GroupBy: d.GroupBy, Line: n.Line, Early: d.Early,
		Match: Match{Kind: d.Match.Kind, Type: d.Match.Type, Metric: d.Match.Metric, Area: d.Match.Area, Source: d.Match.Source}}
	p.common(&r)
	switch d.Kind {
	case KindThreshold:
		p.threshold(&r)
	case KindEvent:
		p.event(&r)
	case KindAbsence:
		p.absence(&r)
	case "":
		p.add("kind", "kind is required: threshold, event or absence")
	default:
		p.add("kind", "kind %q must be threshold, event or absence", d.Kind)
	}
	return r, p.errs
}

// ruleParser reads one rule mapping, collecting every problem.
type ruleParser struct {
	n    *yaml.Node
	d    ruleDoc
	errs Errors
}

func (p *ruleParser) add(key, format string, args ...any) {
	p.errs = append(p.errs, RuleError{keyLine(p.n, key), fmt.Sprintf(format, args...)})
}

func (p *ruleParser) has(key string) bool { _, v := lookup(p.n, key); return v != nil }

// dur reads a duration key; positive: it must be > 0, else >= 0.
func (p *ruleParser) dur(key, v string, required, positive bool) time.Duration {
	if !p.has(key) {
		if required {
			p.add(key, "%s is required for %s", key, aKind(p.d.Kind))
		}
		return 0
	}
	x, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.add(key, "%s %q is not a duration like 90s, 10m or 1h", key, v)
	case positive && x <= 0:
		p.add(key, "%s %q must be more than 0, like 15m", key, v)
	case x < 0:
		p.add(key, "%s %q must not be negative", key, v)
	case v[0] == '+' || v[0] == '-':
		p.add(key, "%s %q must be written without a sign", key, v)
	}
	return x
}

func (p *ruleParser) severity(key, v string) Severity {
	if !p.has(key) {
		p.add(key, "severity is required for %s: info, warning or critical", aKind(p.d.Kind))
		return ""
	}
	s, ok := severities[v]
	if !ok {
		p.add(key, "severity %q must be info, warning or critical", v)
	}
	return s
}

// common checks what every kind of rule has: name, match, group_by, summary.
func (p *ruleParser) common(r *Rule) {
	d := &p.d
	switch {
	case !p.has("name"):
		p.add("name", "name is required")
	case !ruleName.MatchString(d.Name):
		p.add("name", "name %q must be 1-64 characters of [a-z0-9_], starting with a letter", d.Name)
	}
	if _, m := lookup(p.n, "match"); m != nil {
		globs := [][]string{r.Match.Kind, r.Match.Type, r.Match.Metric, r.Match.Area, r.Match.Source}
		for i, sel := range selectors {
			for _, g := range globs[i] {
				if _, err := path.Match(g, ""); err != nil {
					p.errs = append(p.errs, RuleError{keyLine(m, sel), fmt.Sprintf("match %s pattern %q is not a valid glob", sel, g)})
				}
			}
		}
	}
	seenGroup := map[string]bool{}
	for _, g := range d.GroupBy {
		switch {
		case !groupFields[g]:
			p.add("group_by", "group_by %q must be area, source or type", g)
		case seenGroup[g]:
			p.add("group_by", "group_by lists %q twice", g)
		}
		seenGroup[g] = true
	}
	if msg := checkSummary(d.Summary); msg != "" {
		p.add("summary", "%s", msg)
	}
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
