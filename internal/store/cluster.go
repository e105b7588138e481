package store

import (
	"fmt"
	"regexp"
	"strings"
)

// The DDL of a migration, rewritten for a ClickHouse cluster: each
// statement runs ON CLUSTER, and ReplacingMergeTree tables become
// ReplicatedReplacingMergeTree with one ZooKeeper path per shard and table,
// so every replica of a shard holds the same rows and FINAL stays exact.
// The shipped migrations stay plain (they must run unchanged on a single
// 18.16 and on 24.x); the rewrite is applied when IOC_CLICKHOUSE_CLUSTER
// names a cluster of the server's remote_servers.
var (
	createTable = regexp.MustCompile(`(?is)^(\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+)([A-Za-z_][A-Za-z0-9_]*)(\s*\()`)
	alterTable  = regexp.MustCompile(`(?is)^(\s*ALTER\s+TABLE\s+)([A-Za-z_][A-Za-z0-9_]*)(\s)`)
	replacing   = regexp.MustCompile(`(?i)ENGINE\s*=\s*ReplacingMergeTree\(\s*([^)]*?)\s*\)`)
)

// ForCluster rewrites one DDL statement for cluster; "" leaves it as is.
func ForCluster(stmt, cluster, database string) (string, error) {
	if cluster == "" {
		return stmt, nil
	}
	if !validIdentifier(cluster) {
		return "", fmt.Errorf("store: cluster name %q must be letters, digits and underscores", cluster)
	}
	if m := createTable.FindStringSubmatchIndex(stmt); m != nil {
		table := stmt[m[4]:m[5]]
		out := stmt[:m[5]] + " ON CLUSTER " + cluster + stmt[m[5]:]
		path := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", database, table)
		n := 0
		out = replacing.ReplaceAllStringFunc(out, func(engine string) string {
			n++
			args := strings.TrimSpace(replacing.FindStringSubmatch(engine)[1])
			if args != "" {
				args = ", " + args
			}
			return "ENGINE = ReplicatedReplacingMergeTree(" + path + args + ")"
		})
		if n == 0 {
			return "", fmt.Errorf("store: table %s: only ReplacingMergeTree tables can be replicated here", table)
		}
		return out, nil
	}
	if m := alterTable.FindStringSubmatchIndex(stmt); m != nil {
		return stmt[:m[5]] + " ON CLUSTER " + cluster + stmt[m[5]:], nil
	}
	return "", fmt.Errorf("store: cannot run on a cluster: %.60s", strings.TrimSpace(stmt))
}
