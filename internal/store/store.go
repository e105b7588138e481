// Package store writes events, windows, rejections and alerts to ClickHouse
// and reads back what a restart needs. Every statement it sends runs on
// ClickHouse 18.16 and 24.x+ (see CONTRACT.md, "ClickHouse compatibility").
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is and how to log in.
type Config struct {
	Addrs    []string
	Database string
	User     string
	Password string
	TLS      *tls.Config
	// Cluster, when set, runs the DDL ON CLUSTER with replicated tables
	// (see ForCluster).
	Cluster string
	// DialTimeout bounds connecting; ReadTimeout bounds one query.
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

// Store is a connection pool to one ClickHouse database.
type Store struct {
	conn     driver.Conn
	database string
	cluster  string // "" on a single server
	version  versionClock
	mu       sync.Mutex
	batches  map[string]driver.Batch // long-lived insert batches by table
	// Scratch of the array columns' rows (see appendArrays), under mu.
	strPtrs   []*string
	floatPtrs []*float64
	// windowCols pools InsertWindows' columns (pipelines of several
	// partitions share a Store).
	windowCols sync.Pool
}

// Open connects, creating the database if it does not exist yet.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		return nil, fmt.Errorf("store: database name is empty")
	}
	if !validIdentifier(cfg.Database) {
		return nil, fmt.Errorf("store: database name %q must be letters, digits and underscores", cfg.Database)
	}
	conn, err := dial(cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	// A least-privilege user may reach its own database only: create it
	// (through "default") only when it is missing.
	var ex *clickhouse.Exception
	if err := conn.Ping(ctx); errors.As(err, &ex) && ex.Code == codeUnknownDatabase {
		conn.Close()
		if err := createDatabase(ctx, cfg); err != nil {
			return nil, err
		}
		if conn, err = dial(cfg, cfg.Database); err != nil {
			return nil, err
		}
	}
	return &Store{conn: conn, database: cfg.Database, cluster: cfg.Cluster, batches: map[string]driver.Batch{}}, nil
}

const codeUnknownDatabase = 81

func createDatabase(ctx context.Context, cfg Config) error {
	boot, err := dial(cfg, "default")
	if err != nil {
		return err
	}
	defer boot.Close()
	create := "CREATE DATABASE IF NOT EXISTS " + cfg.Database
	if cfg.Cluster != "" {
		if !validIdentifier(cfg.Cluster) {
			return fmt.Errorf("store: cluster name %q must be letters, digits and underscores", cfg.Cluster)
		}
		create += " ON CLUSTER " + cfg.Cluster
	}
	if err := boot.Exec(ctx, create); err != nil {
		return fmt.Errorf("store: database %s is missing on %s and cannot be created as %s (an administrator can create it): %w",
			cfg.Database, strings.Join(cfg.Addrs, ","), cfg.User, err)
	}
	return nil
}

func dial(cfg Config, database string) (driver.Conn, error) {
	dialTimeout := cfg.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	readTimeout := cfg.ReadTimeout
	if readTimeout == 0 {
		readTimeout = 60 * time.Second
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             cfg.Addrs,
		Auth:             clickhouse.Auth{Database: database, Username: cfg.User, Password: cfg.Password},
		TLS:              cfg.TLS,
		DialTimeout:      dialTimeout,
		ReadTimeout:      readTimeout,
		MaxOpenConns:     4,
		MaxIdleConns:     4,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open ClickHouse %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	return conn, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// ServerVersion returns the server's version string, e.g. "18.16.1".
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("store: server version: %w", err)
	}
	return v, nil
}

// Close releases the connections.
func (s *Store) Close() error {
	s.mu.Lock()
	for table, b := range s.batches {
		_ = b.Abort()
		delete(s.batches, table)
	}
	s.mu.Unlock()
	return s.conn.Close()
}

func validIdentifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// versionClock hands out window row versions: microseconds of the wall
// clock, strictly increasing within the process, so a rewrite of a window
// after a restart always supersedes the rows before it.
type versionClock struct{ last uint64 }

func (v *versionClock) next() uint64 {
	now := uint64(time.Now().UnixMicro())
	if now <= v.last {
		now = v.last + 1
	}
	v.last = now
	return now
}
