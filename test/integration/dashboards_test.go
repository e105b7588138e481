//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.yaml.in/yaml/v3"

	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/test/testenv"
)

// grafanaDashboard is what the tests read of a dashboard's JSON.
type grafanaDashboard struct {
	file          string
	UID           string                           `json:"uid"`
	Title         string                           `json:"title"`
	Description   string                           `json:"description"`
	SchemaVersion int                              `json:"schemaVersion"`
	Panels        []grafanaPanel                   `json:"panels"`
	Templating    struct{ List []grafanaVariable } `json:"templating"`
}

type grafanaPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Datasource  *grafanaRef     `json:"datasource"`
	Targets     []grafanaTarget `json:"targets"`
	Panels      []grafanaPanel  `json:"panels"` // a collapsed row's
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	RefID      string          `json:"refId"`
	Datasource *grafanaRef     `json:"datasource"`
	RawSQL     string          `json:"rawSql"`
	Expr       string          `json:"expr"`
	Format     json.RawMessage `json:"format"`
	QueryType  string          `json:"queryType"`
}

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *grafanaRef     `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
}

func (v grafanaVariable) sql() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct{ RawSQL, Query string }
	_ = json.Unmarshal(v.Query, &q)
	return q.RawSQL + q.Query
}

// allPanels flattens rows.
func allPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

const (
	clickhouseUID = "iocstream-clickhouse"
	prometheusUID = "iocstream-prometheus"
)

func loadDashboards(t *testing.T) []grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "deployments", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) < 7 {
		t.Fatalf("dashboards: %v, %d files, want the 7 of CONTRACT §10", err, len(files))
	}
	var out []grafanaDashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := grafanaDashboard{file: filepath.Base(f)}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		out = append(out, d)
	}
	return out
}

// provisionedUIDs are the datasource uids of the shipped provisioning.
func provisionedUIDs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deployments", "grafana", "provisioning", "datasources", "iocstream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			UID, Type string
			JSONData  map[string]any `yaml:"jsonData"`
		}
	}
	if err := yaml.Unmarshal(b, &p); err != nil || p.APIVersion != 1 {
		t.Fatalf("datasources provisioning: %v (apiVersion %d)", err, p.APIVersion)
	}
	uids := map[string]string{}
	for _, ds := range p.Datasources {
		uids[ds.UID] = ds.Type
		if ds.Type == "grafana-clickhouse-datasource" && (ds.JSONData["protocol"] != "native" || ds.JSONData["defaultDatabase"] != "ioc") {
			t.Errorf("the ClickHouse datasource must use the native protocol and database ioc: %v", ds.JSONData)
		}
	}
	return uids
}

var (
	varRef   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	macroRef = regexp.MustCompile(`\$__[A-Za-z_]+`)
	// the macros of CONTRACT §10 that run on 18.16, and Prometheus' own.
	allowedMacros = map[string]bool{"$__timeFilter": true, "$__fromTime": true, "$__toTime": true, "$__interval_s": true,
		"$__conditionalAll": true, "$__rate_interval": true, "$__interval": true, "$__range": true}
)

// TestDashboardsWellFormed: every dashboard is one Grafana loads as it is
// meant: a schema version, unique panel ids, provisioned datasources,
// defined variables, numeric formats, a unit on every panel, only the
// macros that run on ClickHouse 18.16, Vietnamese titles with the English
// in the description.
func TestDashboardsWellFormed(t *testing.T) {
	uids := provisionedUIDs(t)
	if uids[clickhouseUID] != "grafana-clickhouse-datasource" || uids[prometheusUID] != "prometheus" {
		t.Fatalf("provisioned datasources %v", uids)
	}
	seenUID := map[string]bool{}
	for _, d := range loadDashboards(t) {
		t.Run(d.file, func(t *testing.T) {
			if d.SchemaVersion < 36 || d.UID == "" || seenUID[d.UID] || d.Title == "" || d.Description == "" {
				t.Fatalf("schemaVersion %d, uid %q (twice: %v), title %q, description %q", d.SchemaVersion, d.UID, seenUID[d.UID], d.Title, d.Description)
			}
			seenUID[d.UID] = true
			vars := map[string]bool{}
			for _, v := range d.Templating.List {
				vars[v.Name] = true
			}
			ids := map[int]bool{}
			for _, p := range allPanels(d.Panels) {
				if p.Type == "row" {
					continue
				}
				if p.ID == 0 || ids[p.ID] {
					t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
				}
				ids[p.ID] = true
				if p.FieldConfig.Defaults.Unit == "" && p.Type != "text" {
					t.Errorf("panel %q has no unit", p.Title)
				}
				if len(p.Targets) == 0 && p.Type != "text" {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					ds := tg.Datasource
					if ds == nil {
						ds = p.Datasource
					}
					if ds == nil || uids[ds.UID] == "" || uids[ds.UID] != ds.Type {
						t.Errorf("panel %q target %s: datasource %+v is not provisioned", p.Title, tg.RefID, ds)
						continue
					}
					query := tg.RawSQL + tg.Expr
					if ds.UID == clickhouseUID {
						var f float64
						if err := json.Unmarshal(tg.Format, &f); err != nil || (f != 0 && f != 1) {
							t.Errorf("panel %q target %s: format %s, want the number 0 (time series) or 1 (table)", p.Title, tg.RefID, tg.Format)
						}
						for _, m := range macroRef.FindAllString(query, -1) {
							if !allowedMacros[m] {
								t.Errorf("panel %q: macro %s does not run on ClickHouse 18.16", p.Title, m)
							}
						}
					}
					for _, m := range varRef.FindAllStringSubmatch(query, -1) {
						if !strings.HasPrefix(m[1], "__") && !vars[m[1]] {
							t.Errorf("panel %q: $%s is not a variable of the dashboard", p.Title, m[1])
						}
					}
				}
			}
		})
	}
}

// expandMacros does what the ClickHouse plugin does to a panel's SQL
// before it runs: $__conditionalAll in the frontend (its condition, or
// 1=1 when the variable is All), then the variables, then the backend's
// time macros. vars maps a variable to its value; "" is All.
func expandMacros(sql string, from, to time.Time, intervalS int, vars map[string]string) (string, error) {
	var err error
	sql = expandConditionalAll(sql, vars)
	sql = varRef.ReplaceAllStringFunc(sql, func(m string) string {
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
	timeFilter := regexp.MustCompile(`\$__timeFilter\(([^)]*)\)`)
	sql = timeFilter.ReplaceAllStringFunc(sql, func(m string) string {
		col := strings.TrimSpace(timeFilter.FindStringSubmatch(m)[1])
		return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, from.Unix(), col, to.Unix())
	})
	sql = strings.ReplaceAll(sql, "$__fromTime", fmt.Sprintf("toDateTime(%d)", from.Unix()))
	sql = strings.ReplaceAll(sql, "$__toTime", fmt.Sprintf("toDateTime(%d)", to.Unix()))
	sql = strings.ReplaceAll(sql, "$__interval_s", strconv.Itoa(intervalS))
	if m := macroRef.FindString(sql); m != "" && err == nil {
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

func TestExpandMacros(t *testing.T) {
	from, to := time.Unix(1000, 0), time.Unix(2000, 0)
	for _, tt := range []struct {
		sql  string
		vars map[string]string
		want string
	}{
		{"WHERE $__timeFilter(window_start) AND x", nil, "WHERE window_start >= toDateTime(1000) AND window_start <= toDateTime(2000) AND x"},
		{"$__conditionalAll(area IN ('${area}', 'b'), $area)", map[string]string{"area": ""}, "1=1"},
		{"$__conditionalAll(area IN ('${area}', 'b'), $area)", map[string]string{"area": "kim-long"}, "area IN ('kim-long', 'b')"},
		{"intDiv(toUInt32(t), $__interval_s) BETWEEN $__fromTime AND $__toTime", nil, "intDiv(toUInt32(t), 60) BETWEEN toDateTime(1000) AND toDateTime(2000)"},
	} {
		got, err := expandMacros(tt.sql, from, to, 60, tt.vars)
		if err != nil || got != tt.want {
			t.Errorf("expandMacros(%q) = %q, %v; want %q", tt.sql, got, err, tt.want)
		}
	}
	if _, err := expandMacros("area = '$area'", from, to, 60, map[string]string{"area": ""}); err == nil {
		t.Error("a variable outside $__conditionalAll with All is not caught")
	}
}

// TestDashboardQueriesOn1816 fills a database by running the simulator's
// flood, pollution and congestion scenarios through iocd (three simulated
// hours each, one after the other, with 1 % bad, 1 % duplicate and 2 % late
// messages), then runs every ClickHouse query of
// every dashboard over that range as the plugin would, each variable All
// and set to a value it offers: no error, a time column first for a time
// series, and rows.
func TestDashboardQueriesOn1816(t *testing.T) {
	db, admin := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	// Ending a few minutes ago, so that "the last 15 minutes" panels have data.
	const span = 3 * time.Hour
	start := time.Now().Add(-3*span - 5*time.Minute).Truncate(time.Minute)
	sent := 0
	for i, sc := range []sim.Scenario{sim.ScenarioFlood, sim.ScenarioPollution, sim.ScenarioCongestion} {
		from := start.Add(time.Duration(i) * span)
		gen, err := sim.New(sim.Config{Seed: int64(11 + i), Start: from, Scenario: sc,
			BadRatio: 0.01, DupRatio: 0.01, LateRatio: 0.02})
		if err != nil {
			t.Fatal(err)
		}
		var chunk []message
		for gen.NextTime().Before(from.Add(span)) {
			m := gen.Next()
			chunk = append(chunk, message{subject: m.Subject, data: m.Data, msgID: m.MsgID})
			if len(chunk) == 10_000 {
				publish(t, js, chunk)
				sent += len(chunk)
				chunk = chunk[:0]
			}
		}
		publish(t, js, chunk)
		sent += len(chunk)
	}
	waitDrained(t, js)
	// The range a wall screen shows: up to now, so that what happens at
	// processing time (rejections, operators' actions) is in it too.
	end := time.Now().Add(time.Minute)
	t.Logf("%d messages of three scenarios, %s to %s", sent, start.Format(time.RFC3339), end.Format(time.RFC3339))
	// Every alert firing is acknowledged, so the alerts dashboard's time to
	// acknowledge has data.
	waitFor(t, 30*time.Second, "alerts firing", func() (bool, string) {
		n := len(liveAlerts(t, d.http))
		return n > 0, fmt.Sprintf("%d firing", n)
	})
	for _, a := range liveAlerts(t, d.http) {
		apiClient{t, d.http, ""}.must("POST", "/api/v1/alerts/"+a.Fingerprint+"/ack", `{"by": "trực ban"}`, 202)
	}
	waitFor(t, 30*time.Second, "the acknowledgements in alert_actions", func() (bool, string) {
		var n uint64
		err := admin.QueryRow(context.Background(), "SELECT count() FROM "+db+".alert_actions").Scan(&n)
		return err == nil && n > 0, fmt.Sprintf("%d rows, %v", n, err)
	})

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{testenv.ClickHouseAddr()}, Auth: clickhouse.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ran := 0
	for _, dash := range loadDashboards(t) {
		// The values each variable offers, from its own query.
		values := map[string][]string{}
		for _, v := range dash.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := expandMacros(v.sql(), start, end, 60, map[string]string{})
			if err != nil {
				t.Fatalf("%s: variable %s: %v", dash.file, v.Name, err)
			}
			vals, err := queryStrings(conn, q)
			if err != nil {
				t.Fatalf("%s: variable %s: %v\n%s", dash.file, v.Name, err, q)
			}
			values[v.Name] = vals
		}
		for _, p := range allPanels(dash.Panels) {
			for _, tg := range p.Targets {
				if tg.RawSQL == "" || (tg.Datasource != nil && tg.Datasource.UID != clickhouseUID) {
					continue
				}
				for _, vars := range variableSets(values) {
					q, err := expandMacros(tg.RawSQL, start, end, 300, vars)
					if err != nil {
						t.Errorf("%s / %s: %v", dash.file, p.Title, err)
						continue
					}
					var f float64
					_ = json.Unmarshal(tg.Format, &f)
					rows, cols, err := runPanelQuery(conn, q, f == 0)
					ran++
					switch {
					case err != nil:
						t.Errorf("%s / %s %v: %v\n%s", dash.file, p.Title, vars, err, q)
					case rows == 0 && allOf(vars):
						t.Errorf("%s / %s: no rows over three scenarios (columns %v)\n%s", dash.file, p.Title, cols, q)
					}
				}
			}
		}
	}
	t.Logf("ran %d panel queries on ClickHouse 18.16", ran)
	// The Prometheus panels name metrics iocd exports.
	scrape := metricsText(t, d.http)
	metricName := regexp.MustCompile(`\bioc_[a-z0-9_]+`)
	for _, dash := range loadDashboards(t) {
		for _, p := range allPanels(dash.Panels) {
			for _, tg := range p.Targets {
				for _, m := range metricName.FindAllString(tg.Expr, -1) {
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
					if !strings.Contains(scrape, "\n# TYPE "+base+" ") {
						t.Errorf("%s / %s: iocd exports no metric %s", dash.file, p.Title, m)
					}
				}
			}
		}
	}
	// What the flood scenario must show: Kim Long above BĐ3 (3.5 m).
	var top float64
	if err := conn.QueryRow(context.Background(), "SELECT max(max) AS top FROM window_agg FINAL WHERE window_size_s = 60 "+
		"AND metric = 'height' AND source = 'wl-kim-long'").Scan(&top); err != nil || top < 3.5 {
		t.Errorf("Kim Long peaked at %.2f m (%v): the flood panels should show BĐ3 reached", top, err)
	}
}

func allOf(vars map[string]string) bool {
	for _, v := range vars {
		if v != "" {
			return false
		}
	}
	return true
}

// variableSets are the assignments a panel runs with: every variable All,
// then each variable alone set to the first value it offers.
func variableSets(values map[string][]string) []map[string]string {
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

func queryStrings(conn driver.Conn, q string) ([]string, error) {
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// runPanelQuery runs a panel's query and checks the columns a panel needs:
// for a time series, a DateTime first and a number after it.
func runPanelQuery(conn driver.Conn, q string, timeSeries bool) (int, []string, error) {
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var cols []string
	for _, c := range rows.ColumnTypes() {
		cols = append(cols, c.Name()+" "+c.DatabaseTypeName())
	}
	if timeSeries {
		types := rows.ColumnTypes()
		if len(types) < 2 || !strings.HasPrefix(types[0].DatabaseTypeName(), "DateTime") {
			return 0, cols, fmt.Errorf("a time series needs a DateTime column first and a value: columns %v", cols)
		}
	}
	n := 0
	for rows.Next() {
		n++
	}
	return n, cols, rows.Err()
}
