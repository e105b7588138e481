// Package daemon is iocd's process: it connects NATS and ClickHouse,
// restores the windows and the alert engine in the one order that works,
// runs the pipeline (one, or one per owned partition), the HTTP API and
// the rules reloader, and drains on shutdown. cmd/iocd only parses flags.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/alertmanager"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/httpapi"
	"github.com/iocstream/iocstream/internal/ingest"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/quality"
	"github.com/iocstream/iocstream/internal/silence"
	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/internal/window"
	"github.com/iocstream/iocstream/schemas"
)

func storeConfig(cfg config.Config) (store.Config, error) {
	sc := store.Config{Addrs: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase,
		User: cfg.ClickHouseUser, Password: cfg.ClickHousePassword, Cluster: cfg.ClickHouseCluster}
	if cfg.ClickHouseTLS || cfg.ClickHouseTLSCA != "" {
		sc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.ClickHouseTLSCA != "" {
			pem, err := os.ReadFile(cfg.ClickHouseTLSCA)
			if err != nil {
				return sc, fmt.Errorf("IOC_CLICKHOUSE_TLS_CA: %w", err)
			}
			sc.TLS.RootCAs = x509.NewCertPool()
			if !sc.TLS.RootCAs.AppendCertsFromPEM(pem) {
				return sc, fmt.Errorf("IOC_CLICKHOUSE_TLS_CA %s holds no PEM certificate", cfg.ClickHouseTLSCA)
			}
		}
	}
	return sc, nil
}

// Migrate applies the ClickHouse migrations and returns.
func Migrate(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	return applyMigrations(ctx, st, log)
}

func applyMigrations(ctx context.Context, st *store.Store, log zerolog.Logger) error {
	migrations, err := store.LoadMigrations(schemas.ClickHouse, "clickhouse")
	if err != nil {
		return err
	}
	// Several iocd processes starting together (IOC_PARTITIONS) race to
	// apply the same migration, and 18.16 has no ALTER ... IF NOT EXISTS:
	// the loser's statement fails. After a pause it finds the migration
	// recorded by the winner and skips it.
	for attempt := 1; ; attempt++ {
		results, err := st.Migrate(ctx, migrations)
		if err == nil || attempt == 5 {
			for _, r := range results {
				log.Info().Str("migration", r.Name).Str("status", r.Status).Msg("migration")
			}
			return err
		}
		pause := time.Duration(500+rand.IntN(1000)) * time.Millisecond
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", pause).
			Msg("migration failed; another iocd may be applying it: retrying")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// openStore connects to ClickHouse, retrying while it is not up yet: at
// start-up the server may still be starting.
func openStore(ctx context.Context, cfg config.Config, log zerolog.Logger) (*store.Store, error) {
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		sc, err := storeConfig(cfg)
		if err != nil {
			return nil, err
		}
		st, err := store.Open(ctx, sc)
		if err == nil {
			if err = st.Ping(ctx); err == nil {
				return st, nil
			}
			st.Close()
		}
		var badCert *tls.CertificateVerificationError
		if errors.As(err, &badCert) {
			// Waiting will not make the certificate valid.
			return nil, fmt.Errorf("ClickHouse at %v: TLS certificate not trusted (IOC_CLICKHOUSE_TLS_CA): %w", cfg.ClickHouseAddr, err)
		}
		if attempt == 10 {
			return nil, fmt.Errorf("ClickHouse at %v not reachable after %d attempts: %w", cfg.ClickHouseAddr, attempt, err)
		}
		log.Warn().Err(err).Strs("addr", cfg.ClickHouseAddr).Int("attempt", attempt).Msg("ClickHouse not reachable yet; retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Serve runs iocd until ctx ends, then drains; version is logged at start.
func Serve(ctx context.Context, cfg config.Config, version string, log zerolog.Logger) error {
	log.Info().Str("version", version).Interface("config", cfg.Redacted()).Msg("starting iocd")
	if cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
		log.Info().Int("memory_limit_mb", cfg.MemoryLimitMB).Msg("Go memory limit set: the GC collects before the heap passes it")
	}
	if err := httpapi.CheckTokens(cfg.HTTPTokens); err != nil {
		return err
	}
	m := metrics.New()

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := applyMigrations(ctx, st, log); err != nil {
		return err
	}

	natsURL := cfg.NATSURL
	if natsURL == "" {
		srv, err := broker.StartEmbedded(cfg.NATSListen, cfg.DataDir, log)
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		}()
		natsURL = srv.ClientURL()
	}
	nc, err := broker.Connect(natsURL, "iocd", broker.Auth{User: cfg.NATSUser, Password: cfg.NATSPassword,
		Token: cfg.NATSToken, CredsFile: cfg.NATSCreds, NKeySeedFile: cfg.NATSNKeySeed,
		TLSCA: cfg.NATSTLSCA, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := broker.EnsureStreams(setupCtx, js, broker.StreamLimits{EventsMaxAge: cfg.EventsMaxAge.D(),
		AlertsMaxAge: cfg.AlertsMaxAge.D(), DLQMaxAge: cfg.DLQMaxAge.D(), DuplicateWindow: cfg.DuplicateWindow.D(),
		Replicas: cfg.StreamReplicas}, log); err != nil {
		return err
	}
	rules, err := loadAlerting(ctx, cfg, m, log)
	if err != nil {
		return err
	}
	var silences *silence.Store
	if rules != nil {
		if silences, err = openSilences(ctx, cfg, js, st, log); err != nil {
			return err
		}
	}
	var fwd forwarder
	if rules != nil {
		if fwd, err = startForwarder(cfg, silences, m, log); err != nil {
			return err
		}
		defer fwd.stop()
	}
	if cfg.Partitions > 0 {
		return servePartitioned(ctx, cfg, st, nc, js, rules, silences, fwd, m, log)
	}
	if err := broker.CheckUnpartitioned(setupCtx, js); err != nil {
		return err
	}
	cons, err := broker.EnsureConsumer(setupCtx, js, broker.ConsumerSettings{Durable: cfg.Consumer,
		MaxAckPending: cfg.MaxAckPending, AckWait: cfg.AckWait.D(), Prefetch: min(cfg.BatchSize, 10_000)}, log)
	if err != nil {
		return err
	}

	ackFloor, err := cons.AckFloor(setupCtx)
	if err != nil {
		return err
	}
	var alerting ingest.Alerting
	var windows *window.Set
	var boardAPI httpapi.Alerts
	if rules != nil {
		var engine *alert.Engine
		alerting, engine, windows, err = restoreEngine(ctx, cfg, st, streamAlerts(js), rules.current(), silencer{silences}, nil, "", ackFloor,
			m, log)
		if err != nil {
			return err
		}
		rules.add(engine)
		board := alert.NewBoard()
		defer board.Close()
		alerting.Board = board
		if sh := fwd.share(); sh != nil {
			alerting.Notify = sh
		}
		boardAPI = alertAPI{board, rules.Act}
	} else if windows, err = restoreWindows(ctx, cfg, st, ackFloor, nil, nil, m, log); err != nil {
		return err
	}
	sources := quality.New(m.Registry)
	pipe := ingest.New(pipelineConfig(cfg), windows, st, js, alerting, sources, m, log)

	api, err := startAPI(ctx, cfg, m, nc, st, httpapi.Check{Name: "pipeline", Run: func(context.Context) error {
		if !pipe.Healthy() {
			return errors.New("consumer not bound or ClickHouse writes failing")
		}
		return nil
	}}, apiParts{board: boardAPI, sources: sources, pending: pipe.Pending, rules: rules,
		silences: silences, alertmanager: fwd.status}, log)
	if err != nil {
		return err
	}
	defer shutdownAPI(api)

	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Str("http", api.Addr()).Strs("clickhouse", cfg.ClickHouseAddr).
		Str("database", cfg.ClickHouseDatabase).Msg("iocd ready: consuming IOC_EVENTS")
	if err := pipe.Run(ctx, ingest.JetStream(cons)); err != nil {
		return err
	}
	log.Info().Msg("drained; bye")
	return nil
}

func pipelineConfig(cfg config.Config) ingest.Config {
	return ingest.Config{
		BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval.D(), EarlyInterval: cfg.EarlyInterval.D(),
		EvalInterval: 100 * time.Millisecond, MaxFutureSkew: cfg.MaxFutureSkew.D(), ShutdownTimeout: cfg.ShutdownTimeout.D(),
	}
}

// apiParts is what the HTTP API serves beyond the probes.
type apiParts struct {
	board   httpapi.Alerts // nil: alerting is off
	sources httpapi.Sources
	pending func() float64 // the consumer's backlog
	rules   *engines
	// silences is nil when alerting is off.
	silences *silence.Store
	// alertmanager is the Alertmanager bridge's state, for /api/v1/status.
	alertmanager func() []alertmanager.TargetStatus
}

// startAPI serves the HTTP API: the probes (NATS, ClickHouse and the
// pipelines' own check), the alert board and its history and charts, the
// sources' quality, the console, behind the bearer tokens.
func startAPI(ctx context.Context, cfg config.Config, m *metrics.Metrics, nc *nats.Conn, st *store.Store, pipelines httpapi.Check,
	parts apiParts, log zerolog.Logger) (*httpapi.Server, error) {
	api, err := httpapi.New(cfg.HTTPAddr, m.Registry, []httpapi.Check{natsCheck(nc), {Name: "clickhouse", Run: st.Ping},
		pipelines}, parts.board, cfg.Pprof, log)
	if err != nil {
		return nil, err
	}
	api.HandleSources(parts.sources, parts.pending)
	api.HandleStatus(func() any {
		st := status{Alertmanager: []alertmanager.TargetStatus{}}
		if parts.alertmanager != nil {
			st.Alertmanager = parts.alertmanager()
		}
		return st
	})
	if parts.board != nil {
		api.HandleHistory(st)
		api.HandleSeries(st, parts.rules.rule)
		api.HandleSilences(ctx, parts.silences)
	}
	if err := api.RequireTokens(cfg.HTTPTokens, cfg.HTTPOpenProbes); err != nil {
		return nil, err
	}
	go api.Serve()
	return api, nil
}

// status is GET /api/v1/status: what is degraded without making iocd
// unready (an Alertmanager that does not answer delays notifications, not
// the pipeline).
type status struct {
	Alertmanager []alertmanager.TargetStatus `json:"alertmanager"`
}

func natsCheck(nc *nats.Conn) httpapi.Check {
	return httpapi.Check{Name: "nats", Run: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", s)
		}
		return nil
	}}
}

func shutdownAPI(api *httpapi.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = api.Shutdown(sctx)
}
