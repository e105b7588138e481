package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
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
	ruleName    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	groupFields = map[string]bool{"area": true, "source": true, "type": true}
	severities  = map[string]Severity{"info": Info, "warning": Warning, "critical": Critical}
	condition   = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9_.]*)\s*(>=|<=|==|!=|>|<)\s*(\S.*?)\s*$`)
	minWindow   = time.Minute
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
		return nil, Errors{{yamlLine(err), "not valid YAML: " + yamlMsg(err)}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, Errors{{doc.Line, "the top level must be a mapping with a 'rules:' list"}}
	}
	var list *yaml.Node
	var errs Errors
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if k.Value == "rules" {
			list = v
		} else {
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

func parseRule(n *yaml.Node) (Rule, Errors) {
	var errs Errors
	add := func(key, format string, args ...any) {
		errs = append(errs, RuleError{keyLine(n, key), fmt.Sprintf(format, args...)})
	}
	if n.Kind != yaml.MappingNode {
		return Rule{}, Errors{{n.Line, "each rule must be a mapping"}}
	}
	var d ruleDoc
	if err := decodeStrict(n, &d); err != nil {
		return Rule{}, Errors{{yamlLine(err), yamlMsg(err)}}
	}
	r := Rule{Name: d.Name, Kind: d.Kind, Summary: d.Summary, Category: d.Category, SubCategory: d.SubCategory,
		Labels: d.Labels, GroupBy: d.GroupBy, Line: n.Line, Early: d.Early,
		Match: Match{Kind: d.Match.Kind, Type: d.Match.Type, Metric: d.Match.Metric, Area: d.Match.Area, Source: d.Match.Source}}
	if !ruleName.MatchString(d.Name) {
		add("name", "name %q must be 1-64 characters of [a-z0-9_], starting with a letter", d.Name)
	}
	for _, globs := range [][]string{r.Match.Kind, r.Match.Type, r.Match.Metric, r.Match.Area, r.Match.Source} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				add("match", "match pattern %q is not a valid glob", g)
			}
		}
	}
	for _, g := range d.GroupBy {
		if !groupFields[g] {
			add("group_by", "group_by %q must be area, source or type", g)
		}
	}
	dur := func(key, v string, required bool) time.Duration {
		if v == "" {
			if required {
				add(key, "%s is required for a %s rule", key, d.Kind)
			}
			return 0
		}
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			add(key, "%s %q is not a duration like 90s, 10m or 1h", key, v)
		}
		return x
	}
	severity := func(key, v string) Severity {
		s, ok := severities[v]
		if !ok {
			add(key, "severity %q must be info, warning or critical", v)
		}
		return s
	}
	switch d.Kind {
	case KindThreshold:
		r.Window = dur("window", d.Window, true)
		if r.Window > 0 && (r.Window < minWindow || r.Window%minWindow != 0) {
			add("window", "window %s must be a whole number of minutes (the 1-minute pane)", r.Window)
		}
		if !aggregates[d.Agg] {
			add("agg", "agg %q must be one of count, sum, avg, min, max, last, rate_per_hour", d.Agg)
		}
		r.Agg = d.Agg
		r.Threshold = Threshold{Op: Op(d.Op), Clear: d.Clear, For: dur("for", d.For, false)}
		switch {
		case d.Threshold != nil && len(d.Levels) > 0:
			add("levels", "give either threshold with severity, or levels, not both")
		case d.Threshold != nil:
			r.Threshold.Levels = []Level{{Threshold: *d.Threshold, Severity: severity("severity", d.Severity)}}
		case len(d.Levels) > 0:
			for _, l := range d.Levels {
				if l.Threshold == nil {
					add("levels", "every level needs a threshold")
					continue
				}
				r.Threshold.Levels = append(r.Threshold.Levels, Level{Threshold: *l.Threshold, Severity: severity("levels", l.Severity), Name: l.Name})
			}
		default:
			add("threshold", "a threshold rule needs threshold and severity, or levels")
		}
		if len(errs) == 0 {
			if err := r.Threshold.Validate(); err != nil {
				add("op", "%v", err)
			}
		}
		if r.Early && !monotone(r.Agg, r.Threshold.Op) {
			add("early", "early: true needs an aggregate a partial pane can only push further past the threshold "+
				"(max, sum or count with > or >=; min with < or <=), so a partial result never fires an alert the final pane would not")
		}
		if d.ActiveHours != "" {
			h, err := parseHours(d.ActiveHours)
			if err != nil {
				add("active_hours", "%v", err)
			}
			r.Active = &h
		}
	case KindEvent:
		r.Severity = severity("severity", d.Severity)
		r.ResolveAfter = dur("resolve_after", d.ResolveAfter, true)
		for _, w := range d.When {
			m := condition.FindStringSubmatch(w)
			if m == nil {
				add("when", "condition %q must look like 'confidence >= 0.8' or 'attrs.priority == urgent'", w)
				continue
			}
			r.When = append(r.When, Condition{Field: m[1], Op: m[2], Value: strings.Trim(m[3], `"'`)})
		}
	case KindAbsence:
		r.Severity = severity("severity", d.Severity)
		r.After = dur("after", d.After, true)
	default:
		add("kind", "kind %q must be threshold, event or absence", d.Kind)
	}
	return r, errs
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

// decodeStrict decodes a node, rejecting unknown keys.
func decodeStrict(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		// Lines in err count from the rule's own first line.
		return &shiftedError{err: err, offset: n.Line - 1}
	}
	return nil
}

type shiftedError struct {
	err    error
	offset int
}

func (e *shiftedError) Error() string { return e.err.Error() }

var lineRe = regexp.MustCompile(`line (\d+): `)

// yamlLine finds the line an error of yaml.v3 names (1 when none).
func yamlLine(err error) int {
	offset := 0
	var se *shiftedError
	if errors.As(err, &se) {
		offset, err = se.offset, se.err
	}
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		var n int
		fmt.Sscanf(m[1], "%d", &n)
		return n + offset
	}
	return 1 + offset
}

// yamlMsg strips yaml.v3's own prefixes so the line is said once.
func yamlMsg(err error) string {
	var se *shiftedError
	if errors.As(err, &se) {
		err = se.err
	}
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
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return Hours{}, fmt.Errorf("active_hours %q must look like 06:00-21:00", s)
	}
	a, err1 := time.Parse("15:04", strings.TrimSpace(from))
	b, err2 := time.Parse("15:04", strings.TrimSpace(to))
	if err1 != nil || err2 != nil || a.Equal(b) {
		return Hours{}, fmt.Errorf("active_hours %q must look like 06:00-21:00 (local time)", s)
	}
	since := func(t time.Time) time.Duration {
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	return Hours{Start: since(a), End: since(b)}, nil
}
