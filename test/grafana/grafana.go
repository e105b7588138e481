// Package grafana reads the shipped Grafana dashboards and expands their
// panels' SQL as Grafana's ClickHouse plugin does, for the tests that run
// every panel on ClickHouse 18.16 (test/integration) and on a modern
// engine through chDB (test/chdb).
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Dashboard is what the tests read of a dashboard's JSON.
type Dashboard struct {
	File          string                    `json:"-"`
	UID           string                    `json:"uid"`
	Title         string                    `json:"title"`
	Description   string                    `json:"description"`
	SchemaVersion int                       `json:"schemaVersion"`
	Panels        []Panel                   `json:"panels"`
	Templating    struct{ List []Variable } `json:"templating"`
}

type Panel struct {
	GridPos     struct{ X, Y, W, H int } `json:"gridPos"`
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	Datasource  *Ref                     `json:"datasource"`
	Targets     []Target                 `json:"targets"`
	Panels      []Panel                  `json:"panels"` // a collapsed row's
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type Ref struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type Target struct {
	RefID      string          `json:"refId"`
	Datasource *Ref            `json:"datasource"`
	RawSQL     string          `json:"rawSql"`
	Expr       string          `json:"expr"`
	Format     json.RawMessage `json:"format"`
	QueryType  string          `json:"queryType"`
}

type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *Ref            `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
}

// SQL is a query variable's query.
func (v Variable) SQL() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct{ RawSQL, Query string }
	_ = json.Unmarshal(v.Query, &q)
	return q.RawSQL + q.Query
}

// AllPanels flattens rows.
func AllPanels(ps []Panel) []Panel {
	var out []Panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, AllPanels(p.Panels)...)
	}
	return out
}

// The provisioned datasources' uids.
const (
	ClickHouseUID = "iocstream-clickhouse"
	PrometheusUID = "iocstream-prometheus"
)

// Load reads every dashboard under dir.
func Load(dir string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := Dashboard{File: filepath.Base(f)}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", d.File, err)
		}
		out = append(out, d)
	}
	return out, nil
}

var (
	// VarRef finds a $variable or ${variable}.
	VarRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	// MacroRef finds a $__macro.
	MacroRef   = regexp.MustCompile(`\$__[A-Za-z_]+`)
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([^)]*)\)`)
)

// Expand does what the ClickHouse plugin does to a panel's SQL
// before it runs: $__conditionalAll in the frontend (its condition, or
// 1=1 when the variable is All), then the variables, then the backend's
// time macros. vars maps a variable to its value; "" is All.
func Expand(sql string, from, to time.Time, intervalS int, vars map[string]string) (string, error) {
	var err error
	sql = expandConditionalAll(sql, vars)
	sql = VarRef.ReplaceAllStringFunc(sql, func(m string) string {
		name := strings.Trim(m, "${}")
		if strings.HasPrefix(name, "__") {
			return m
		}
		v, ok := vars[name]
		if !ok || v == "" {
			err = fmt.Errorf("$%s is used outside $__conditionalAll, where All has no value", name)
		}
		return v
	})
	sql = timeFilter.ReplaceAllStringFunc(sql, func(m string) string {
		col := strings.TrimSpace(timeFilter.FindStringSubmatch(m)[1])
		return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, from.Unix(), col, to.Unix())
	})
	sql = strings.ReplaceAll(sql, "$__fromTime", fmt.Sprintf("toDateTime(%d)", from.Unix()))
	sql = strings.ReplaceAll(sql, "$__toTime", fmt.Sprintf("toDateTime(%d)", to.Unix()))
	sql = strings.ReplaceAll(sql, "$__interval_s", strconv.Itoa(intervalS))
	if m := MacroRef.FindString(sql); m != "" && err == nil {
		err = fmt.Errorf("macro %s left unexpanded", m)
	}
	return sql, err
}

// expandConditionalAll replaces $__conditionalAll(cond, $v), whose cond
// may hold parentheses and commas.
func expandConditionalAll(sql string, vars map[string]string) string {
	const macro = "$__conditionalAll("
	for {
		i := strings.Index(sql, macro)
		if i < 0 {
			return sql
		}
		depth, j := 1, i+len(macro)
		for ; j < len(sql) && depth > 0; j++ {
			switch sql[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		args := sql[i+len(macro) : j-1]
		k := strings.LastIndex(args, ",")
		cond, v := strings.TrimSpace(args[:k]), strings.Trim(strings.TrimSpace(args[k+1:]), "${}")
		if vars[v] == "" {
			cond = "1=1"
		}
		sql = sql[:i] + cond + sql[j:]
	}
}

// AllOf reports whether every variable is All.
func AllOf(vars map[string]string) bool {
	for _, v := range vars {
		if v != "" {
			return false
		}
	}
	return true
}

// VariableSets are the assignments a panel runs with: every variable All,
// then each variable alone set to the first value it offers.
func VariableSets(values map[string][]string) []map[string]string {
	all := map[string]string{}
	var names []string
	for name := range values {
		all[name] = ""
		names = append(names, name)
	}
	sort.Strings(names)
	sets := []map[string]string{all}
	for _, name := range names {
		if len(values[name]) == 0 {
			continue
		}
		one := map[string]string{}
		for n := range values {
			one[n] = ""
		}
		one[name] = values[name][0]
		sets = append(sets, one)
	}
	return sets
}
