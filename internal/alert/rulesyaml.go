package alert

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML side of the rules file: the shape of every key checked before
// decoding, so that each problem gets its own line and a plain message.

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
