package store

import (
	"testing"
	"testing/fstest"

	"github.com/iocstream/iocstream/schemas"
)

func TestLoadShippedMigrations(t *testing.T) {
	ms, err := LoadMigrations(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || ms[0].Version != 1 || len(ms[0].Statements) != 4 {
		t.Fatalf("unexpected migrations: %+v", ms)
	}
	if ms[1].MinServer != "20.1" {
		t.Fatalf("0002 should need a newer server, got %q", ms[1].MinServer)
	}
}

func TestLoadMigrationsErrors(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
	}{
		{"no number", fstest.MapFS{"m/init.sql": {Data: []byte("SELECT 1;")}}},
		{"duplicate version", fstest.MapFS{"m/1_a.sql": {Data: []byte("SELECT 1;")}, "m/01_b.sql": {Data: []byte("SELECT 1;")}}},
		{"empty", fstest.MapFS{"m/1_a.sql": {Data: []byte("-- nothing\n")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadMigrations(tt.fs, "m"); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- c\nCREATE TABLE a (x UInt8);\n\nALTER TABLE a\n  ADD COLUMN y UInt8;\nSELECT ';' -- trailing")
	if len(got) != 3 || got[0] != "CREATE TABLE a (x UInt8)" || got[1] != "ALTER TABLE a\n  ADD COLUMN y UInt8" {
		t.Fatalf("%q", got)
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"18.16.1", "20.1", false}, {"24.3.2.23", "20.1", true}, {"20.1.0", "20.1", true}, {"20.0.9", "20.1", false},
		{"26.7.3", "24.10", true},
	}
	for _, tt := range tests {
		if got := versionAtLeast(tt.have, tt.want); got != tt.ok {
			t.Errorf("versionAtLeast(%s, %s) = %v", tt.have, tt.want, got)
		}
	}
}
