package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "iocd.yaml")
	if err := os.WriteFile(file, []byte("clickhouse_database: city\nwindow_sizes: [1m, 5m]\nidle_timeout: 30s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{"defaults", "", nil, func(c Config) bool {
			return c.ClickHouseDatabase == "ioc" && c.NATSListen == "127.0.0.1:4222" && c.AllowedLateness.D() == 2*time.Minute &&
				c.CorrectionHorizon.D() == time.Hour && len(c.WindowSizes) == 1 && c.HTTPAddr == ":8080"
		}, ""},
		{"file", file, nil, func(c Config) bool {
			return c.ClickHouseDatabase == "city" && len(c.WindowSizes) == 2 && c.IdleTimeout.D() == 30*time.Second
		}, ""},
		{"env beats file", file, map[string]string{"IOC_CLICKHOUSE_DATABASE": "x", "IOC_WINDOW_SIZES": "1m,1h",
			"IOC_CLICKHOUSE_ADDR": "a:9000, b:9000", "IOC_BATCH_SIZE": "10"}, func(c Config) bool {
			return c.ClickHouseDatabase == "x" && len(c.WindowSizes) == 2 && c.WindowSizes[1].D() == time.Hour &&
				len(c.ClickHouseAddr) == 2 && c.ClickHouseAddr[1] == "b:9000" && c.BatchSize == 10
		}, ""},
		{"bad duration", "", map[string]string{"IOC_IDLE_TIMEOUT": "soon"}, nil, "IOC_IDLE_TIMEOUT"},
		{"bad window", "", map[string]string{"IOC_WINDOW_SIZES": "1500ms"}, nil, "whole number of seconds"},
		{"bad level", "", map[string]string{"IOC_LOG_LEVEL": "loud"}, nil, "IOC_LOG_LEVEL"},
		{"horizon below lateness", "", map[string]string{"IOC_CORRECTION_HORIZON": "1m"}, nil, "IOC_CORRECTION_HORIZON"},
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, nil, "no such file"},
		{"alertmanager pair", "", map[string]string{"IOC_ALERTMANAGER_URL": "http://am1:9093, http://am2:9093",
			"IOC_ALERTMANAGER_RESEND": "30s"}, func(c Config) bool {
			return len(c.AlertmanagerURL) == 2 && c.AlertmanagerURL[1] == "http://am2:9093" &&
				c.AlertmanagerResend.D() == 30*time.Second
		}, ""},
		{"alertmanager resend too short", "", map[string]string{"IOC_ALERTMANAGER_RESEND": "10ms"}, nil, "IOC_ALERTMANAGER_RESEND"},
		{"memory limit negative", "", map[string]string{"IOC_MEMORY_LIMIT_MB": "-1"}, nil, "IOC_MEMORY_LIMIT_MB"},
		{"memory limit", "", map[string]string{"IOC_MEMORY_LIMIT_MB": "900"}, func(c Config) bool { return c.MemoryLimitMB == 900 }, ""},
		{"alertmanager two credentials", "", map[string]string{"IOC_ALERTMANAGER_USER": "ioc",
			"IOC_ALERTMANAGER_BEARER_TOKEN": "t"}, nil, "choose one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestShippedExampleLoads(t *testing.T) {
	c, err := Load("../../deployments/iocd.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("the example's values must be the defaults:\n got %+v\nwant %+v", c, Default())
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c := Default()
	c.ClickHousePassword, c.NATSToken, c.NATSPassword = "hunter2", "s3cret", "pa55"
	c.HTTPTokens = []string{"tok-one", "tok-two"}
	c.AlertmanagerPassword, c.AlertmanagerBearerToken = "tok-am-pw", "tok-am-bearer"
	for k, v := range c.Redacted() {
		if strings.Contains(v, "hunter2") || strings.Contains(v, "s3cret") || strings.Contains(v, "pa55") || strings.Contains(v, "tok-") {
			t.Fatalf("%s leaks a secret: %s", k, v)
		}
	}
}
