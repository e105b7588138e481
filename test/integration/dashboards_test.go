//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.yaml.in/yaml/v3"

	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/internal/subject"
	"github.com/iocstream/iocstream/test/grafana"
	"github.com/iocstream/iocstream/test/testenv"
)

func loadDashboards(t *testing.T) []grafana.Dashboard {
	t.Helper()
	ds, err := grafana.Load(filepath.Join(testenv.RepoRoot(t), "deployments", "grafana", "dashboards"))
	if err != nil || len(ds) < 7 {
		t.Fatalf("dashboards: %v, %d files, want the 7 of CONTRACT §10", err, len(ds))
	}
	return ds
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

// allowedMacros are the macros of CONTRACT §10 that run on 18.16, and
// Prometheus' own.
var allowedMacros = map[string]bool{"$__timeFilter": true, "$__fromTime": true, "$__toTime": true, "$__interval_s": true,
	"$__conditionalAll": true, "$__rate_interval": true, "$__interval": true, "$__range": true}

// TestDashboardsWellFormed: every dashboard is one Grafana loads as it is
// meant: a schema version, unique panel ids, provisioned datasources,
// defined variables, numeric formats, a unit on every panel, only the
// macros that run on ClickHouse 18.16, Vietnamese titles with the English
// in the description.
func TestDashboardsWellFormed(t *testing.T) {
	uids := provisionedUIDs(t)
	if uids[grafana.ClickHouseUID] != "grafana-clickhouse-datasource" || uids[grafana.PrometheusUID] != "prometheus" {
		t.Fatalf("provisioned datasources %v", uids)
	}
	seenUID := map[string]bool{}
	for _, d := range loadDashboards(t) {
		t.Run(d.File, func(t *testing.T) {
			if d.SchemaVersion < 36 || d.UID == "" || seenUID[d.UID] || d.Title == "" || d.Description == "" {
				t.Fatalf("schemaVersion %d, uid %q (twice: %v), title %q, description %q", d.SchemaVersion, d.UID, seenUID[d.UID], d.Title, d.Description)
			}
			seenUID[d.UID] = true
			vars := map[string]bool{}
			for _, v := range d.Templating.List {
				vars[v.Name] = true
			}
			ids := map[int]bool{}
			for _, p := range grafana.AllPanels(d.Panels) {
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
					if ds.UID == grafana.ClickHouseUID {
						var f float64
						if err := json.Unmarshal(tg.Format, &f); err != nil || (f != 0 && f != 1) {
							t.Errorf("panel %q target %s: format %s, want the number 0 (time series) or 1 (table)", p.Title, tg.RefID, tg.Format)
						}
						for _, m := range grafana.MacroRef.FindAllString(query, -1) {
							if !allowedMacros[m] {
								t.Errorf("panel %q: macro %s does not run on ClickHouse 18.16", p.Title, m)
							}
						}
					}
					for _, m := range grafana.VarRef.FindAllStringSubmatch(query, -1) {
						if !strings.HasPrefix(m[1], "__") && !vars[m[1]] {
							t.Errorf("panel %q: $%s is not a variable of the dashboard", p.Title, m[1])
						}
					}
				}
			}
		})
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
		got, err := grafana.Expand(tt.sql, from, to, 60, tt.vars)
		if err != nil || got != tt.want {
			t.Errorf("grafana.Expand(%q) = %q, %v; want %q", tt.sql, got, err, tt.want)
		}
	}
	if _, err := grafana.Expand("area = '$area'", from, to, 60, map[string]string{"area": ""}); err == nil {
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
	// A report takes hours from received to resolved, so three hours of a
	// scenario hold only 0 to 3 resolutions, and at some times of day none:
	// the city's caseload (the reports of a day and a half of a normal
	// run) is woven in by event time, as if the scenarios' own.
	caseload := feedbackOf(t, start.Add(-24*time.Hour), start.Add(3*span))
	var chunk []message
	flush := func() {
		publish(t, js, chunk)
		sent += len(chunk)
		chunk = chunk[:0]
	}
	add := func(m sim.Message) {
		chunk = append(chunk, message{subject: m.Subject, data: m.Data, msgID: m.MsgID})
		if len(chunk) == 10_000 {
			flush()
		}
	}
	for i, sc := range []sim.Scenario{sim.ScenarioFlood, sim.ScenarioPollution, sim.ScenarioCongestion} {
		from := start.Add(time.Duration(i) * span)
		gen, err := sim.New(sim.Config{Seed: int64(11 + i), Start: from, Scenario: sc,
			BadRatio: 0.01, DupRatio: 0.01, LateRatio: 0.02})
		if err != nil {
			t.Fatal(err)
		}
		for gen.NextTime().Before(from.Add(span)) {
			for len(caseload) > 0 && !caseload[0].at.After(gen.NextTime()) {
				add(caseload[0].Message)
				caseload = caseload[1:]
			}
			add(gen.Next())
		}
	}
	flush()
	waitDrained(t, js)
	// The range a wall screen shows: up to now, so that what happens at
	// processing time (rejections, operators' actions) is in it too.
	end := time.Now().Add(time.Minute)
	t.Logf("%d messages of three scenarios and a caseload of Hue-S reports, %s to %s", sent, start.Format(time.RFC3339), end.Format(time.RFC3339))
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
	pictures := os.Getenv("IOC_DASHBOARD_PICTURES")
	for _, dash := range loadDashboards(t) {
		var results []grafana.Result
		// The values each variable offers, from its own query.
		values := map[string][]string{}
		for _, v := range dash.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := grafana.Expand(v.SQL(), start, end, 60, map[string]string{})
			if err != nil {
				t.Fatalf("%s: variable %s: %v", dash.File, v.Name, err)
			}
			vals, err := queryStrings(conn, q)
			if err != nil {
				t.Fatalf("%s: variable %s: %v\n%s", dash.File, v.Name, err, q)
			}
			values[v.Name] = vals
		}
		for _, p := range grafana.AllPanels(dash.Panels) {
			for _, tg := range p.Targets {
				if tg.RawSQL == "" || (tg.Datasource != nil && tg.Datasource.UID != grafana.ClickHouseUID) {
					continue
				}
				for _, vars := range grafana.VariableSets(values) {
					q, err := grafana.Expand(tg.RawSQL, start, end, 300, vars)
					if err != nil {
						t.Errorf("%s / %s: %v", dash.File, p.Title, err)
						continue
					}
					var f float64
					_ = json.Unmarshal(tg.Format, &f)
					rows, cols, err := runPanelQuery(conn, q, f == 0)
					ran++
					switch {
					case err != nil:
						t.Errorf("%s / %s %v: %v\n%s", dash.File, p.Title, vars, err, q)
					case rows == 0 && grafana.AllOf(vars):
						t.Errorf("%s / %s: no rows over three scenarios (columns %v)\n%s", dash.File, p.Title, cols, q)
					}
					if pictures != "" && grafana.AllOf(vars) && tg.RefID == p.Targets[0].RefID {
						results = append(results, panelResult(t, conn, p, q))
					}
				}
			}
		}
		if pictures != "" {
			drawDashboard(t, pictures, dash, results)
		}
	}
	t.Logf("ran %d panel queries on ClickHouse 18.16", ran)
	if dir := os.Getenv("IOC_DASHBOARD_SAMPLE"); dir != "" {
		dumpSample(t, db, dir, start, end)
	}
	// The Prometheus panels name metrics iocd exports, and the exposition
	// (after three scenarios: every label seen) passes promtool's lint.
	scrape := metricsText(t, d.http)
	lint := exec.Command("promtool", "check", "metrics")
	lint.Stdin = strings.NewReader(scrape)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on iocd's /metrics (make test-monitoring installs promtool): %v\n%s", err, out)
	}
	metricName := regexp.MustCompile(`\bioc_[a-z0-9_]+`)
	for _, dash := range loadDashboards(t) {
		for _, p := range grafana.AllPanels(dash.Panels) {
			for _, tg := range p.Targets {
				for _, m := range metricName.FindAllString(tg.Expr, -1) {
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
					if !strings.Contains(scrape, "\n# TYPE "+base+" ") {
						t.Errorf("%s / %s: iocd exports no metric %s", dash.File, p.Title, m)
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

// panelResult reads a panel's rows for its picture.
func panelResult(t *testing.T, conn driver.Conn, p grafana.Panel, q string) grafana.Result {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	r := grafana.Result{Panel: p}
	types := rows.ColumnTypes()
	for _, c := range types {
		r.Columns = append(r.Columns, c.Name())
	}
	for rows.Next() && len(r.Rows) < 5000 {
		ptrs := make([]any, len(types))
		for i, c := range types {
			ptrs[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			v := reflect.ValueOf(p).Elem()
			if v.Kind() == reflect.Pointer { // a Nullable column
				if v.IsNil() {
					continue
				}
				v = v.Elem()
			}
			row[i] = v.Interface()
		}
		r.Rows = append(r.Rows, row)
	}
	return r
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

// sampleTables are what the chDB test (test/chdb) loads to run the same
// panels on a modern engine: the rows of this run, events sampled (the
// panels that read events need the reports and the noise readings).
var sampleTables = map[string]string{
	"window_agg":    "SELECT * FROM window_agg FINAL",
	"alerts":        "SELECT * FROM alerts FINAL",
	"alert_actions": "SELECT * FROM alert_actions FINAL",
	"rejected":      "SELECT * FROM rejected FINAL",
	"events":        "SELECT * FROM events FINAL WHERE kind = 'feedback' OR type = 'noise' OR cityHash64(id) % 20 = 0",
}

// dumpSample writes the run's rows (and its time range) as JSONEachRow, through ClickHouse's
// HTTP interface (the native driver does not return FORMAT output).
func dumpSample(t *testing.T, db, dir string, from, to time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := os.Getenv("IOC_TEST_CLICKHOUSE_HTTP")
	if addr == "" {
		addr = "127.0.0.1:8123"
	}
	for table, q := range sampleTables {
		u := "http://" + addr + "/?database=" + db + "&query=" + url.QueryEscape(q+" FORMAT JSONEachRow")
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("sample of %s: %v", table, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("sample of %s: %s %v: %.300s", table, resp.Status, err, b)
		}
		if err := os.WriteFile(filepath.Join(dir, table+".jsonl"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("sample for chDB: %s, %d bytes", table, len(b))
	}
	// The range the panels ran over, for the chDB test to use the same.
	if err := os.WriteFile(filepath.Join(dir, "range.json"), []byte(fmt.Sprintf(`{"from": %d, "to": %d}`,
		from.Unix(), to.Unix())), 0o644); err != nil {
		t.Fatal(err)
	}
}

// timedMessage is a simulator message and the clock it was made at.
type timedMessage struct {
	sim.Message
	at time.Time
}

// feedbackOf is the Hue-S feedback of a normal run from from to to, each
// message with the time it was made at.
func feedbackOf(t *testing.T, from, to time.Time) []timedMessage {
	gen, err := sim.New(sim.Config{Seed: 29, Start: from, Scenario: sim.ScenarioNormal})
	if err != nil {
		t.Fatal(err)
	}
	var out []timedMessage
	for gen.NextTime().Before(to) {
		at := gen.NextTime()
		m := gen.Next()
		if kind, _, _, _ := subject.ParseEvent(m.Subject); kind == "feedback" {
			out = append(out, timedMessage{m, at})
		}
	}
	return out
}
