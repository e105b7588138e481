package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/iocstream/iocstream/internal/city"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	rulepack "github.com/iocstream/iocstream/deployments/rules"
	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/aqi"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/httpapi"
	"github.com/iocstream/iocstream/internal/ingest"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/quality"
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

func migrate(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
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

func serve(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	log.Info().Str("version", buildVersion()).Interface("config", cfg.Redacted()).Msg("starting iocd")
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
	if cfg.Partitions > 0 {
		return servePartitioned(ctx, cfg, st, nc, js, rules, m, log)
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
		alerting, engine, windows, err = restoreEngine(ctx, cfg, st, js, rules.current(), nil, "", ackFloor, m, log)
		if err != nil {
			return err
		}
		rules.add(engine)
		board := alert.NewBoard()
		defer board.Close()
		alerting.Board = board
		boardAPI = alertAPI{board, rules.Acknowledge}
	} else if windows, err = restoreWindows(ctx, cfg, st, ackFloor, nil, nil, m, log); err != nil {
		return err
	}
	sources := quality.New(m.Registry)
	pipe := ingest.New(pipelineConfig(cfg), windows, st, js, alerting, sources, m, log)

	api, err := httpapi.New(cfg.HTTPAddr, m.Registry, []httpapi.Check{natsCheck(nc), {Name: "clickhouse", Run: st.Ping},
		{Name: "pipeline", Run: func(context.Context) error {
			if !pipe.Healthy() {
				return errors.New("consumer not bound or ClickHouse writes failing")
			}
			return nil
		}},
	}, boardAPI, cfg.Pprof, log)
	if err != nil {
		return err
	}
	api.HandleSources(sources, pipe.Pending)
	api.RequireTokens(cfg.HTTPTokens, cfg.HTTPOpenProbes)
	go api.Serve()
	defer shutdownAPI(api)

	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Str("http", api.Addr()).Strs("clickhouse", cfg.ClickHouseAddr).
		Str("database", cfg.ClickHouseDatabase).Msg("iocd ready: consuming IOC_EVENTS")
	if err := pipe.Run(ctx, cons); err != nil {
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

// engines is the alert side shared by a process: the rules file's
// current rules and every live engine (one, or one per owned partition).
// The rules watcher and acknowledgements reach every engine through it.
type engines struct {
	mu    sync.Mutex
	rules []alert.Rule
	set   map[*alert.Engine]struct{}
}

func (e *engines) SetRules(rules []alert.Rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = rules
	for eng := range e.set {
		eng.SetRules(rules)
	}
}

func (e *engines) current() []alert.Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rules
}

// add registers a new engine and gives it the current rules: the file may
// have been reloaded since the engine was built.
func (e *engines) add(eng *alert.Engine) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set[eng] = struct{}{}
	eng.SetRules(e.rules)
}

func (e *engines) remove(eng *alert.Engine) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.set, eng)
}

// Acknowledge goes to every engine; those without the fingerprint ignore it.
func (e *engines) Acknowledge(fingerprint, by, comment string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for eng := range e.set {
		eng.Acknowledge(fingerprint, by, comment)
	}
}

// loadAlerting loads the rules file and starts watching it. With IOC_RULES
// empty, alerting is off and it returns nil.
func loadAlerting(ctx context.Context, cfg config.Config, m *metrics.Metrics, log zerolog.Logger) (*engines, error) {
	if cfg.Rules == "" {
		log.Warn().Msg("IOC_RULES is empty: alerting is off")
		return nil, nil
	}
	rules, data, err := loadRules(cfg.Rules)
	if err != nil {
		return nil, err
	}
	pack := cfg.Rules
	if pack == rulepack.Builtin {
		pack = "the Huế pack built into iocd (" + rulepack.Builtin + ")"
	}
	log.Info().Str("rules", pack).Int("count", len(rules)).Msg("alert rules in force")
	m.RulesLoaded.Set(float64(len(rules)))
	m.RulesReloadOK.Set(1)
	e := &engines{rules: rules, set: map[*alert.Engine]struct{}{}}
	go watchRules(ctx, cfg.Rules, data, 2*time.Second, e, m, log)
	return e, nil
}

// restoreEngine builds an alert engine and the windows, and rebuilds their
// state in the one order that works: the last transition of every alert
// from IOC_ALERTS; the windows from the events acknowledged (which also
// tell the engine when each source was last heard); the older window
// history the rules need from window_agg; then the windows' exact state at
// the ack floor, from which the engine knows what it had decided. keep,
// when set, selects the areas this engine owns (a partition); scope names
// them in fingerprints of groups keyed by neither area nor source.
func restoreEngine(ctx context.Context, cfg config.Config, st *store.Store, js jetstream.JetStream, rules []alert.Rule,
	keep func(area string) bool, scope string, ackFloor uint64, m *metrics.Metrics,
	log zerolog.Logger) (ingest.Alerting, *alert.Engine, *window.Set, error) {
	names := map[string]string{}
	for _, a := range city.Areas() {
		names[a.Slug] = a.Name
	}
	paneSec := uint32(cfg.WindowSizes[0].D().Seconds())
	for _, d := range cfg.WindowSizes {
		paneSec = min(paneSec, uint32(d.D().Seconds()))
	}
	engine := alert.NewEngine(alert.EngineConfig{AreaNames: names, Scope: scope, PaneMs: int64(paneSec) * 1000}, rules)
	deriver := aqi.NewDeriver()
	mine := func(area string) bool { return keep == nil || keep(area) }

	start := time.Now()
	all, skipped, err := broker.ReadAlerts(ctx, js)
	if err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	if keep != nil {
		own := all[:0:0]
		for _, a := range all {
			if keep(a.Area) {
				own = append(own, a)
			}
		}
		all = own
	}
	if err := repairAlertsTable(ctx, st, all, log); err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	last := alert.Latest(all)
	engine.Restore(last)
	var firing []alert.Alert
	for _, a := range last {
		if a.Status == alert.StatusFiring {
			firing = append(firing, a)
		}
	}
	windows, err := restoreWindows(ctx, cfg, st, ackFloor, keep, engine.RestoreEvent, m, log)
	if err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	// The window history of the longest rule, counted back from the newest
	// stored window (the data's clock, not the wall clock: a replay of a
	// past day must find its history too).
	var longest time.Duration
	for _, r := range rules {
		longest = max(longest, r.Window+r.Threshold.For)
	}
	newest, err := st.LatestWindowStart(ctx)
	if err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	var history []window.Row
	from := newest - int64(max(longest, 24*time.Hour).Seconds()) // 24 h: NowCast and corrections of vn_aqi
	panes, err := st.ReadPanes(ctx, paneSec, from, historyMetrics(rules), func(r *window.Row) {
		if !mine(r.Area) {
			return
		}
		if r.StartMs+r.SizeMs <= windows.RestoredAfter(r.Source) {
			engine.RestorePane(r) // the windows hold the newer ones as they were at the ack floor
		}
		if r.Kind == "environment" && r.Type == "air_quality" {
			history = append(history, *r)
		}
	})
	if err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	deriver.Restore(history)
	hourly, err := st.ReadPanes(ctx, 3600, newest-int64(longest.Seconds()), []string{aqi.Metric}, func(r *window.Row) {
		if mine(r.Area) {
			engine.RestorePane(r)
		}
	})
	if err != nil {
		return ingest.Alerting{}, nil, nil, err
	}
	engine.RestoreWindows(windows.TakeUpdates(nil)) // also rebuilds pending `for` timers
	log.Info().Int("rules", len(rules)).Int("alerts_known", len(last)).
		Int("alerts_firing", len(firing)).Int("not_alerts_skipped", skipped).Int("panes", panes).Int("hourly_rows", hourly).
		Dur("took", time.Since(start)).Msg("alert engine restored")
	return ingest.Alerting{Engine: engine, Deriver: deriver, Firing: firing}, engine, windows, nil
}

// alertAPI is what the HTTP API serves: the live board, and
// acknowledgements handed to the engines.
type alertAPI struct {
	*alert.Board
	ack func(fingerprint, by, comment string)
}

func (a alertAPI) Acknowledge(fingerprint, by, comment string) { a.ack(fingerprint, by, comment) }

// repairAlertsTable writes the transitions JetStream stored but the alerts
// table lacks: the process that published them died before its insert, and
// the restored engine will not decide them again.
func repairAlertsTable(ctx context.Context, st *store.Store, all []alert.Alert, log zerolog.Logger) error {
	if len(all) == 0 {
		return nil
	}
	have, err := st.AlertKeys(ctx)
	if err != nil {
		return err
	}
	var missing []alert.Alert
	for _, a := range all {
		if !have[a.MsgID()] {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := st.InsertAlerts(ctx, missing); err != nil {
		return fmt.Errorf("write alert transitions missing from the alerts table: %w", err)
	}
	log.Info().Int("transitions", len(missing)).Msg("alerts table: wrote transitions published before the last stop but not stored")
	return nil
}

// historyMetrics lists the metrics whose window history start-up reads:
// those the threshold rules name and the pollutants of vn_aqi. Nil (read
// every metric) when a rule selects metrics by a glob or not at all.
func historyMetrics(rules []alert.Rule) []string {
	set := map[string]bool{aqi.PM25: true, aqi.PM10: true, aqi.O3: true, aqi.CO: true, aqi.SO2: true, aqi.NO2: true}
	for _, r := range rules {
		if r.Kind != alert.KindThreshold {
			continue
		}
		if len(r.Match.Metric) == 0 {
			return nil
		}
		for _, m := range r.Match.Metric {
			if strings.ContainsAny(m, "*?[\\") {
				return nil
			}
			set[m] = true
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// restoreWindows rebuilds the windows and the dedup set from the raw events
// stored before the last stop. Only acknowledged events (stream sequence up
// to the ack floor) count: the ones after it come again from JetStream, in
// their original order, and are processed as the first time, so every
// late/drop decision and every window they touch comes out the same.
func restoreWindows(ctx context.Context, cfg config.Config, st *store.Store, ackFloor uint64, keep func(area string) bool,
	onEvent func(*event.Event), m *metrics.Metrics, log zerolog.Logger) (*window.Set, error) {
	sizes := make([]time.Duration, len(cfg.WindowSizes))
	for i, d := range cfg.WindowSizes {
		sizes[i] = d.D()
	}
	windows, err := window.New(window.Config{Sizes: sizes, AllowedLateness: cfg.AllowedLateness.D(),
		IdleTimeout: cfg.IdleTimeout.D(), CorrectionHorizon: cfg.CorrectionHorizon.D()})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	latest, err := st.LatestBySource(ctx, ackFloor, keep)
	if err != nil {
		return nil, err
	}
	from := make(map[string]int64, len(latest))
	for src, ms := range latest {
		from[src] = windows.RestoreFromMs(ms)
	}
	nowMs := time.Now().UnixMilli()
	n, err := st.ReadEvents(ctx, from, ackFloor, func(ev *event.Event, latestMs int64) {
		if keep != nil && !keep(ev.Area) {
			return // the same source in another partition's area
		}
		windows.Restore(ev, latestMs, nowMs)
		if onEvent != nil {
			onEvent(ev)
		}
	})
	if err != nil {
		return nil, err
	}
	windows.FinishRestore()
	m.Restored.Add(float64(n))
	st2 := windows.Stats()
	log.Info().Uint64("ack_floor", ackFloor).Int("sources", len(latest)).Int("events", n).Int("open_windows", st2.OpenWindows).
		Dur("took", time.Since(start)).Msg("restored window state from stored events")
	return windows, nil
}
