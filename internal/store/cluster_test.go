package store

import (
	"strings"
	"testing"

	"github.com/iocstream/iocstream/schemas"
)

func TestForCluster(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"no cluster", "CREATE TABLE IF NOT EXISTS events (id String) ENGINE = ReplacingMergeTree() ORDER BY id", "", ""},
		{"create", "CREATE TABLE IF NOT EXISTS events (\n id String\n) ENGINE = ReplacingMergeTree()\nORDER BY id",
			"CREATE TABLE IF NOT EXISTS events ON CLUSTER ioc (\n id String\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ioc/events', '{replica}')\nORDER BY id", ""},
		{"version column", "CREATE TABLE IF NOT EXISTS window_agg (v UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY v",
			"CREATE TABLE IF NOT EXISTS window_agg ON CLUSTER ioc (v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ioc/window_agg', '{replica}', version) ORDER BY v", ""},
		{"alter", "ALTER TABLE events MODIFY TTL time + INTERVAL 90 DAY", "ALTER TABLE events ON CLUSTER ioc MODIFY TTL time + INTERVAL 90 DAY", ""},
		{"other engine", "CREATE TABLE IF NOT EXISTS m (x UInt8) ENGINE = Memory", "", "only ReplacingMergeTree"},
		{"other statement", "DROP TABLE events", "", "cannot run on a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := "ioc"
			if tt.name == "no cluster" {
				cluster = ""
			}
			got, err := ForCluster(tt.in, cluster, "ioc")
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case tt.want == "" && got != tt.in, tt.want != "" && got != tt.want:
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, err := ForCluster("ALTER TABLE x DELETE", "bad name", "ioc"); err == nil {
		t.Fatal("a cluster name that is not an identifier was accepted")
	}
}

// Every shipped migration must be rewritable for a cluster.
func TestShippedMigrationsForCluster(t *testing.T) {
	migrations, err := LoadMigrations(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		for i, stmt := range m.Statements {
			out, err := ForCluster(stmt, "ioc_cluster", "ioc")
			if err != nil {
				t.Fatalf("%s statement %d: %v", m.Name, i+1, err)
			}
			if !strings.Contains(out, "ON CLUSTER ioc_cluster") {
				t.Fatalf("%s statement %d: no ON CLUSTER:\n%s", m.Name, i+1, out)
			}
		}
	}
}
