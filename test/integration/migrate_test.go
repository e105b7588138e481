//go:build integration

package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestMigrateIdempotent: `iocd migrate` twice creates the tables once and
// records each applied file once; the version-gated file stays pending on
// an old server.
func TestMigrateIdempotent(t *testing.T) {
	db, conn := testDB(t)
	bin := testenv.Bin(t, "IOC_TEST_IOCD_BIN", "./cmd/iocd")
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(bin, "migrate")
		cmd.Env = append(cmd.Environ(), "IOC_CLICKHOUSE_ADDR="+testenv.ClickHouseAddr(), "IOC_CLICKHOUSE_DATABASE="+db)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate run %d: %v\n%s", run, err, out)
		}
		if run == 2 && !strings.Contains(string(out), "already applied") {
			t.Fatalf("second run did not report 'already applied':\n%s", out)
		}
	}
	ctx := context.Background()
	var tables uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('events','window_agg','rejected','alerts','alert_actions','schema_migrations')", db).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 6 {
		t.Fatalf("%d of 6 tables exist", tables)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	var applied uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	want := uint64(4)
	if strings.HasPrefix(version, "18.") || strings.HasPrefix(version, "19.") {
		want = 3 // 0002 needs TTL support
	}
	if applied != want {
		t.Fatalf("schema_migrations has %d rows on server %s, want %d", applied, version, want)
	}
}
