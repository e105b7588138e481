//go:build chdb

// Package chdb proves the project's SQL on a modern ClickHouse (26.x),
// loaded as a library through chDB: every shipped migration, and every
// dashboard panel over the rows of the 18.16 run (test/integration writes
// them with IOC_DASHBOARD_SAMPLE). make test-chdb fetches the library.
// chdb-go loads it in init and panics without it: hence the build tag.
package chdb

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chdb "github.com/chdb-io/chdb-go/chdb"

	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/schemas"
	"github.com/iocstream/iocstream/test/grafana"
	"github.com/iocstream/iocstream/test/testenv"
)

// TestModernEngine runs, in one chDB session (one per process): every
// migration, including those gated to newer servers; then the 18.16 run's
// rows; then every ClickHouse query of every dashboard, each variable All
// and set to a value it offers, with the column shape its panel needs.
func TestModernEngine(t *testing.T) {
	sess, err := chdb.NewSession(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	query := func(q, format string) (string, error) {
		res, err := sess.Query(q, format)
		if err != nil {
			return "", err
		}
		defer res.Free()
		return res.String(), nil
	}
	var version string
	if version, err = query("SELECT version()", "TSVRaw"); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse %s through chDB", strings.TrimSpace(version))

	// Migrations run as iocd runs them, in database ioc.
	if _, err := query("CREATE DATABASE IF NOT EXISTS ioc", "CSV"); err != nil {
		t.Fatal(err)
	}
	migrations, err := store.LoadMigrations(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		for _, stmt := range m.Statements {
			if _, err := query(qualify(stmt), "CSV"); err != nil {
				t.Fatalf("migration %s on ClickHouse %s: %v\n%s", m.Name, version, err, stmt)
			}
		}
	}
	t.Logf("%d migrations applied", len(migrations))

	dir := os.Getenv("IOC_DASHBOARD_SAMPLE")
	if dir == "" {
		t.Fatal("IOC_DASHBOARD_SAMPLE is not set: make test-chdb runs the 18.16 dashboard test first, which writes the rows")
	}
	var rng struct{ From, To int64 }
	b, err := os.ReadFile(filepath.Join(dir, "range.json"))
	if err != nil || json.Unmarshal(b, &rng) != nil {
		t.Fatalf("no sample in %s (run TestDashboardQueriesOn1816 with IOC_DASHBOARD_SAMPLE set): %v", dir, err)
	}
	for _, table := range []string{"window_agg", "alerts", "alert_actions", "rejected", "events"} {
		file := filepath.Join(dir, table+".jsonl")
		if _, err := query("INSERT INTO ioc."+table+" SELECT * FROM file('"+file+"', 'JSONEachRow')", "CSV"); err != nil {
			t.Fatalf("load %s: %v", table, err)
		}
	}

	from, to := time.Unix(rng.From, 0), time.Unix(rng.To, 0)
	dashboards, err := grafana.Load(filepath.Join(testenv.RepoRoot(t), "deployments", "grafana", "dashboards"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("dashboards: %v", err)
	}
	ran := 0
	for _, d := range dashboards {
		values := map[string][]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := grafana.Expand(v.SQL(), from, to, 60, map[string]string{})
			if err != nil {
				t.Fatalf("%s: variable %s: %v", d.File, v.Name, err)
			}
			out, err := query(qualify(q), "TSVRaw")
			if err != nil {
				t.Fatalf("%s: variable %s on ClickHouse %s: %v\n%s", d.File, v.Name, version, err, q)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line != "" {
					values[v.Name] = append(values[v.Name], line)
				}
			}
		}
		for _, p := range grafana.AllPanels(d.Panels) {
			for _, tg := range p.Targets {
				if tg.RawSQL == "" || (tg.Datasource != nil && tg.Datasource.UID != grafana.ClickHouseUID) {
					continue
				}
				var format float64
				_ = json.Unmarshal(tg.Format, &format)
				for _, vars := range grafana.VariableSets(values) {
					q, err := grafana.Expand(tg.RawSQL, from, to, 300, vars)
					if err != nil {
						t.Errorf("%s / %s: %v", d.File, p.Title, err)
						continue
					}
					ran++
					// JSONCompact names each column's type: the first of a
					// time series must be a DateTime.
					out, err := query(qualify(q), "JSONCompact")
					if err != nil {
						t.Errorf("%s / %s %v on ClickHouse %s: %v\n%s", d.File, p.Title, vars, version, err, q)
						continue
					}
					var res struct {
						Meta []struct{ Name, Type string }
						Rows int `json:"rows"`
					}
					if err := json.Unmarshal([]byte(out), &res); err != nil {
						t.Errorf("%s / %s: %v", d.File, p.Title, err)
						continue
					}
					if format == 0 && (len(res.Meta) < 2 || !strings.HasPrefix(res.Meta[0].Type, "DateTime")) {
						t.Errorf("%s / %s: a time series needs a DateTime first and a value, has %+v", d.File, p.Title, res.Meta)
					}
				}
			}
		}
	}
	t.Logf("ran %d panel queries on ClickHouse %s", ran, strings.TrimSpace(version))
}

// qualify points the unqualified table names of a statement at database
// ioc: a chDB session has no default database to set for a query.
func qualify(q string) string {
	return "USE ioc; " + q
}
