// Package config loads iocd's settings: defaults, then a YAML file, then
// IOC_* environment variables. Keys are flat so that every YAML key has an
// obvious variable: key "clickhouse_addr" is IOC_CLICKHOUSE_ADDR.
package config

import (
	"bytes"
	"fmt"
	rulepack "github.com/iocstream/iocstream/deployments/rules"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is every setting of iocd.
type Config struct {
	NATSURL      string `yaml:"nats_url"`
	NATSListen   string `yaml:"nats_listen"`
	NATSUser     string `yaml:"nats_user"`
	NATSPassword string `yaml:"nats_password" secret:"true"`
	NATSToken    string `yaml:"nats_token" secret:"true"`
	NATSCreds    string `yaml:"nats_creds"`
	NATSNKeySeed string `yaml:"nats_nkey_seed"` // a file, like nats_creds
	NATSTLSCA    string `yaml:"nats_tls_ca"`
	NATSTLSCert  string `yaml:"nats_tls_cert"`
	NATSTLSKey   string `yaml:"nats_tls_key"`
	DataDir      string `yaml:"data_dir"`

	ClickHouseAddr     []string `yaml:"clickhouse_addr"`
	ClickHouseDatabase string   `yaml:"clickhouse_database"`
	ClickHouseUser     string   `yaml:"clickhouse_user"`
	ClickHousePassword string   `yaml:"clickhouse_password" secret:"true"`
	// ClickHouseTLS talks TLS to the server's secure native port (9440);
	// ClickHouseTLSCA verifies it with a private CA (and implies TLS).
	ClickHouseTLS bool `yaml:"clickhouse_tls"`
	// ClickHouseCluster runs the migrations ON CLUSTER with replicated
	// tables (a cluster of the servers' remote_servers; needs ZooKeeper
	// or ClickHouse Keeper).
	ClickHouseCluster string `yaml:"clickhouse_cluster"`
	ClickHouseTLSCA   string `yaml:"clickhouse_tls_ca"`

	HTTPAddr string `yaml:"http_addr"`
	// HTTPTokens, when set, are the bearer tokens the HTTP API accepts
	// (several, so a token can be rotated without downtime).
	HTTPTokens []string `yaml:"http_tokens" secret:"true"`
	// HTTPOpenProbes leaves /healthz, /readyz and /metrics open when
	// tokens are set, for orchestrators' probes and Prometheus.
	HTTPOpenProbes bool `yaml:"http_open_probes"`
	// Pprof serves /debug/pprof on HTTPAddr; off by default because it
	// exposes internals to anyone who can reach the port.
	Pprof    bool   `yaml:"pprof"`
	Rules    string `yaml:"rules"`
	LogLevel string `yaml:"log_level"`

	WindowSizes       []Duration `yaml:"window_sizes"`
	AllowedLateness   Duration   `yaml:"allowed_lateness"`
	IdleTimeout       Duration   `yaml:"idle_timeout"`
	CorrectionHorizon Duration   `yaml:"correction_horizon"`
	MaxFutureSkew     Duration   `yaml:"max_future_skew"`
	EarlyInterval     Duration   `yaml:"early_interval"`

	BatchSize     int      `yaml:"batch_size"`
	FlushInterval Duration `yaml:"flush_interval"`
	MaxAckPending int      `yaml:"max_ack_pending"`
	AckWait       Duration `yaml:"ack_wait"`
	Consumer      string   `yaml:"consumer"`

	EventsMaxAge    Duration `yaml:"events_max_age"`
	AlertsMaxAge    Duration `yaml:"alerts_max_age"`
	DLQMaxAge       Duration `yaml:"dlq_max_age"`
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// StreamReplicas is the replication of the three streams in a NATS
	// cluster (3 for the shipped cluster); 1 on a single server.
	StreamReplicas  int      `yaml:"stream_replicas"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MemoryLimitMB is the Go runtime's soft memory limit, in MiB: the
	// garbage collector works harder near it instead of letting the heap
	// grow to twice the live state. 0 leaves Go's default (GOMEMLIMIT).
	MemoryLimitMB int `yaml:"memory_limit_mb"`

	// Partitions > 0 runs iocd as one of several processes sharing
	// IOC_EVENTS by area (docs/scale-out.md): the events are split into
	// this many partitions, each owned by one process at a time through a
	// lease of LeaseTTL. 0 is the single-process layout.
	Partitions int      `yaml:"partitions"`
	LeaseTTL   Duration `yaml:"lease_ttl"`
	// Instance names this process among its peers; default host-pid.
	Instance string `yaml:"instance"`

	// AlertmanagerURL, when set, are the Alertmanagers iocd sends its
	// alerts to (each gets every alert, as for an HA pair);
	// AlertmanagerResend is how often firing ones are sent again.
	AlertmanagerURL         []string `yaml:"alertmanager_url"`
	AlertmanagerResend      Duration `yaml:"alertmanager_resend"`
	AlertmanagerUser        string   `yaml:"alertmanager_user"`
	AlertmanagerPassword    string   `yaml:"alertmanager_password" secret:"true"`
	AlertmanagerBearerToken string   `yaml:"alertmanager_bearer_token" secret:"true"`
	AlertmanagerTLSCA       string   `yaml:"alertmanager_tls_ca"`
	// ConsoleURL is the console's address as operators reach it, for the
	// links in notifications; default http://<host name><IOC_HTTP_ADDR's port>/.
	ConsoleURL string `yaml:"console_url"`
}

// Default returns the contract's defaults.
func Default() Config {
	return Config{
		NATSListen:         "127.0.0.1:4222",
		DataDir:            "./data",
		ClickHouseAddr:     []string{"127.0.0.1:9000"},
		ClickHouseDatabase: "ioc",
		ClickHouseUser:     "default",
		HTTPAddr:           ":8080",
		HTTPOpenProbes:     true,
		Rules:              rulepack.Builtin,
		LogLevel:           "info",
		WindowSizes:        []Duration{Duration(time.Minute)},
		AllowedLateness:    Duration(2 * time.Minute),
		IdleTimeout:        Duration(time.Minute),
		CorrectionHorizon:  Duration(time.Hour),
		MaxFutureSkew:      Duration(5 * time.Minute),
		EarlyInterval:      Duration(5 * time.Second),
		BatchSize:          50_000,
		FlushInterval:      Duration(time.Second),
		MaxAckPending:      200_000,
		AckWait:            Duration(30 * time.Second),
		Consumer:           "iocd",
		EventsMaxAge:       Duration(7 * 24 * time.Hour),
		AlertsMaxAge:       Duration(30 * 24 * time.Hour),
		DLQMaxAge:          Duration(30 * 24 * time.Hour),
		DuplicateWindow:    Duration(2 * time.Minute),
		StreamReplicas:     1,
		ShutdownTimeout:    Duration(25 * time.Second),
		LeaseTTL:           Duration(10 * time.Second),
		AlertmanagerResend: Duration(time.Minute),
	}
}

// Load reads the file (if path is not empty) over the defaults, then
// applies the environment (lookup is os.LookupEnv outside tests).
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	v := reflect.ValueOf(&cfg).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := t.Field(i).Tag.Get("yaml")
		name := EnvName(key)
		raw, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setField(v.Field(i), raw); err != nil {
			return cfg, fmt.Errorf("config: %s=%q: %w", name, raw, err)
		}
	}
	return cfg, cfg.Validate()
}

// EnvName is the environment variable that overrides a YAML key.
func EnvName(key string) string { return "IOC_" + strings.ToUpper(key) }

func setField(f reflect.Value, raw string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = raw
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("not true or false")
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		*p = n
	case *Duration:
		return p.parse(raw)
	case *[]string:
		*p = splitList(raw)
	case *[]Duration:
		var out []Duration
		for _, s := range splitList(raw) {
			var d Duration
			if err := d.parse(s); err != nil {
				return err
			}
			out = append(out, d)
		}
		*p = out
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

func splitList(raw string) []string {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports settings that cannot work, naming the variable to fix.
func (c Config) Validate() error {
	var errs []string
	if len(c.ClickHouseAddr) == 0 {
		errs = append(errs, "IOC_CLICKHOUSE_ADDR is empty")
	}
	if len(c.WindowSizes) == 0 {
		errs = append(errs, "IOC_WINDOW_SIZES is empty")
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Sprintf("IOC_STREAM_REPLICAS: %d must be 1 to 5", c.StreamReplicas))
	}
	if c.Partitions < 0 || c.Partitions > 256 {
		errs = append(errs, fmt.Sprintf("IOC_PARTITIONS: %d must be 0 (one process) to 256", c.Partitions))
	}
	if c.Partitions > 0 && c.NATSURL == "" {
		errs = append(errs, "IOC_PARTITIONS needs IOC_NATS_URL: processes share one external JetStream, not each its embedded one")
	}
	if c.LeaseTTL.D() < time.Second {
		errs = append(errs, fmt.Sprintf("IOC_LEASE_TTL: %s is shorter than 1s", c.LeaseTTL.D()))
	}
	for _, d := range c.WindowSizes {
		if d.D() < time.Second || d.D()%time.Second != 0 {
			errs = append(errs, fmt.Sprintf("IOC_WINDOW_SIZES: %s is not a whole number of seconds ≥ 1s", d.D()))
		}
	}
	if c.CorrectionHorizon < c.AllowedLateness {
		errs = append(errs, "IOC_CORRECTION_HORIZON must be at least IOC_ALLOWED_LATENESS")
	}
	if c.IdleTimeout <= 0 || c.FlushInterval <= 0 || c.EarlyInterval <= 0 {
		errs = append(errs, "IOC_IDLE_TIMEOUT, IOC_FLUSH_INTERVAL and IOC_EARLY_INTERVAL must be positive")
	}
	if c.BatchSize < 1 || c.MaxAckPending < 2*c.BatchSize {
		errs = append(errs, "IOC_BATCH_SIZE must be ≥ 1 and IOC_MAX_ACK_PENDING at least twice it")
	}
	if c.MemoryLimitMB < 0 {
		errs = append(errs, fmt.Sprintf("IOC_MEMORY_LIMIT_MB: %d is negative (0 leaves Go's default)", c.MemoryLimitMB))
	}
	if c.AlertmanagerResend.D() < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("IOC_ALERTMANAGER_RESEND: %s is shorter than 100ms", c.AlertmanagerResend.D()))
	}
	if c.AlertmanagerBearerToken != "" && c.AlertmanagerUser != "" {
		errs = append(errs, "IOC_ALERTMANAGER_BEARER_TOKEN and IOC_ALERTMANAGER_USER are both set: choose one")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("IOC_LOG_LEVEL %q is not debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Redacted returns the settings as key=value pairs for the start-up log,
// with secrets masked.
func (c Config) Redacted() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := t.Field(i).Tag.Get("yaml")
		val := fmt.Sprint(v.Field(i).Interface())
		if t.Field(i).Tag.Get("secret") == "true" && val != "" {
			val = "***"
		}
		out[key] = val
	}
	return out
}

// Duration is a time.Duration that reads "90s", "2m" or "1h" from YAML and env.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 90s, 2m or 1h", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
