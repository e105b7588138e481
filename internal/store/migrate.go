package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Migration is one versioned .sql file.
type Migration struct {
	Version int
	Name    string
	// MinServer is the oldest server version the file runs on ("" = any),
	// from a "-- min_server_version: X.Y" line.
	MinServer  string
	Statements []string
	Checksum   string
}

// LoadMigrations reads NNNN_name.sql files from fsys, sorted by version.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration %s: name must start with a number and an underscore", e.Name())
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", other, e.Name(), version)
		}
		seen[version] = e.Name()
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		m := Migration{Version: version, Name: e.Name(), Statements: splitStatements(string(body))}
		sum := sha256.Sum256(body)
		m.Checksum = hex.EncodeToString(sum[:8])
		for _, line := range strings.Split(string(body), "\n") {
			if v, found := strings.CutPrefix(strings.TrimSpace(line), "-- min_server_version:"); found {
				m.MinServer = strings.TrimSpace(v)
			}
		}
		if len(m.Statements) == 0 {
			return nil, fmt.Errorf("store: migration %s has no statements", e.Name())
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements drops comment lines and splits on semicolons that end a line.
func splitStatements(body string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// MigrationResult says what Migrate did with one file.
type MigrationResult struct {
	Name   string
	Status string // "applied", "already applied", "pending: needs server X"
}

// Migrate applies the migrations not yet recorded in schema_migrations, in
// order. A file whose min_server_version is above the server's stays
// pending and is applied by a later run on a newer server.
func (s *Store) Migrate(ctx context.Context, migrations []Migration) ([]MigrationResult, error) {
	ddl, err := ForCluster(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY version`, s.cluster, s.database)
	if err != nil {
		return nil, err
	}
	if err := s.conn.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	applied := map[uint32]bool{}
	rows, err := s.conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("store: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	serverVersion, err := s.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	var results []MigrationResult
	for _, m := range migrations {
		if applied[uint32(m.Version)] {
			results = append(results, MigrationResult{m.Name, "already applied"})
			continue
		}
		if m.MinServer != "" && !versionAtLeast(serverVersion, m.MinServer) {
			results = append(results, MigrationResult{m.Name, fmt.Sprintf("pending: needs server %s, have %s", m.MinServer, serverVersion)})
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return results, err
		}
		results = append(results, MigrationResult{m.Name, "applied"})
	}
	return results, nil
}

// migrationTimeout bounds one migration once started.
const migrationTimeout = 2 * time.Minute

// apply runs one migration's statements and records it. Once started it
// runs to its end even if ctx is cancelled (a SIGTERM during start-up):
// ClickHouse has no transactional DDL, and a migration stopped halfway
// would leave columns that its next run cannot add again.
func (s *Store) apply(parent context.Context, m Migration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), migrationTimeout)
	defer cancel()
	for i, stmt := range m.Statements {
		sql, err := ForCluster(stmt, s.cluster, s.database)
		if err != nil {
			return fmt.Errorf("store: migration %s statement %d: %w", m.Name, i+1, err)
		}
		if err := s.conn.Exec(ctx, sql); err != nil {
			// A process killed between a statement and the record of its
			// migration (SIGKILL, a crash) leaves the statement applied.
			if done, cerr := s.columnsAdded(ctx, stmt, err); cerr != nil || !done {
				return fmt.Errorf("store: migration %s statement %d: %w", m.Name, i+1, err)
			}
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("store: record migration %s: %w", m.Name, err)
	}
	if err := batch.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC()); err != nil {
		return fmt.Errorf("store: record migration %s: %w", m.Name, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("store: record migration %s: %w", m.Name, err)
	}
	return nil
}

// codeColumnExists is ClickHouse's ILLEGAL_COLUMN, as in "Cannot add
// column x: column with this name already exists".
const codeColumnExists = 44

var (
	alterAddRe = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\b`)
	addColRe   = regexp.MustCompile(`(?i)\bADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)`)
)

// columnsAdded reports whether stmt, which failed with err, is an ALTER
// TABLE … ADD COLUMN whose columns all exist already: 18.16 has no ADD
// COLUMN IF NOT EXISTS, and one ALTER's columns are added together, so an
// earlier run applied it whole.
func (s *Store) columnsAdded(ctx context.Context, stmt string, err error) (bool, error) {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != codeColumnExists {
		return false, nil
	}
	m := alterAddRe.FindStringSubmatch(stmt)
	if m == nil {
		return false, nil
	}
	rows, qerr := s.conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", s.database, m[1])
	if qerr != nil {
		return false, fmt.Errorf("store: columns of %s: %w", m[1], qerr)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, err
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	for _, c := range addColRe.FindAllStringSubmatch(stmt, -1) {
		if !have[c[1]] {
			return false, nil
		}
	}
	return true, nil
}

// versionAtLeast compares dotted numeric versions ("18.16.1" >= "20.1").
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < len(w); i++ {
		var hv, wv int
		if i < len(h) {
			hv, _ = strconv.Atoi(h[i])
		}
		wv, _ = strconv.Atoi(w[i])
		if hv != wv {
			return hv > wv
		}
	}
	return true
}
