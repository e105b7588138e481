package alert

import (
	"fmt"
	"slices"
	"strings"
)

// Placeholders a summary template may use.
var Placeholders = []string{"value", "threshold", "level", "severity", "rule", "kind", "type", "metric",
	"area", "area_name", "source", "window", "agg", "op"}

// segment is a piece of a summary template: literal text, or the name of
// a placeholder.
type segment struct {
	text        string
	placeholder bool
}

// parseSummary reads a summary template. It is the one reader of
// templates: `rules check` (checkSummary) and the renderer
// (renderSummary) cannot disagree on what a template says. A name is
// trimmed of white space ({{ value }} is {{value}}).
func parseSummary(tmpl string) ([]segment, error) {
	var segs []segment
	var unknown []string
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(tmpl[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("summary has a {{ without its closing }}: %q", tmpl[i:])
		}
		if i > 0 {
			segs = append(segs, segment{text: tmpl[:i]})
		}
		raw := tmpl[i+2 : i+2+j]
		name := strings.TrimSpace(raw)
		if !slices.Contains(Placeholders, name) {
			unknown = append(unknown, "{{"+raw+"}}")
		}
		segs = append(segs, segment{text: name, placeholder: true})
		tmpl = tmpl[i+2+j+2:]
	}
	if tmpl != "" {
		segs = append(segs, segment{text: tmpl})
	}
	if len(unknown) > 0 {
		valid := make([]string, len(Placeholders))
		for i, p := range Placeholders {
			valid[i] = "{{" + p + "}}"
		}
		return nil, fmt.Errorf("summary placeholder %s is not known; the placeholders are %s",
			strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}
	return segs, nil
}

// checkSummary reports what is wrong with a summary template; "" when it
// is fine.
func checkSummary(tmpl string) string {
	if _, err := parseSummary(tmpl); err != nil {
		return err.Error()
	}
	return ""
}

// renderSummary fills a summary template's {{placeholders}}. A template
// the rules check refused (never one that runs) is shown as it is.
func renderSummary(tmpl string, a *Alert, level string, areaNames map[string]string) string {
	segs, err := parseSummary(tmpl)
	if err != nil {
		return tmpl
	}
	var b strings.Builder
	for _, s := range segs {
		if s.placeholder {
			b.WriteString(placeholder(s.text, a, level, areaNames))
		} else {
			b.WriteString(s.text)
		}
	}
	return b.String()
}

func placeholder(name string, a *Alert, level string, areaNames map[string]string) string {
	switch name {
	case "value":
		return formatValue(a.Value)
	case "threshold":
		return formatValue(a.Threshold)
	case "level":
		return level
	case "severity", "rule", "kind", "type", "metric", "area", "source":
		return a.Field(name)
	case "area_name":
		if n, ok := areaNames[a.Area]; ok {
			return n
		}
		return a.Area
	case "window":
		return a.Window
	case "agg":
		return a.Agg
	case "op":
		return a.Op
	}
	return "{{" + name + "}}"
}
