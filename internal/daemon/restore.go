package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/aqi"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/city"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/ingest"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/window"
)

// history is what a restart reads back from ClickHouse; *store.Store
// implements it.
type history interface {
	LatestBySource(ctx context.Context, maxSeq uint64, keep func(area string) bool) (map[string]int64, error)
	ReadEvents(ctx context.Context, fromMs map[string]int64, maxSeq uint64, fn func(ev *event.Event, latestMs int64)) (int, error)
	LatestWindowStart(ctx context.Context) (int64, error)
	ReadPanes(ctx context.Context, sizeSec uint32, fromSec int64, metrics []string, fn func(r *window.Row)) (int, error)
	AlertKeys(ctx context.Context) (map[string]bool, error)
	InsertAlerts(ctx context.Context, alerts []alert.Alert) error
}

// alertLog reads back every transition of IOC_ALERTS.
type alertLog func(ctx context.Context) (all []alert.Alert, skipped int, err error)

// streamAlerts reads IOC_ALERTS.
func streamAlerts(js jetstream.JetStream) alertLog {
	return func(ctx context.Context) ([]alert.Alert, int, error) { return broker.ReadAlerts(ctx, js) }
}

// restoreEngine builds an alert engine and the windows, and rebuilds their
// state in the one order that works: the last transition of every alert
// from IOC_ALERTS; the windows from the events acknowledged (which also
// tell the engine when each source was last heard); the older window
// history the rules need from window_agg; then the windows' exact state at
// the ack floor, from which the engine knows what it had decided. keep,
// when set, selects the areas this engine owns (a partition); scope names
// them in fingerprints of groups keyed by neither area nor source.
func restoreEngine(ctx context.Context, cfg config.Config, st history, alerts alertLog, rules []alert.Rule,
	silences alert.Silencer, keep func(area string) bool, scope string, ackFloor uint64, m *metrics.Metrics,
	log zerolog.Logger) (ingest.Alerting, *alert.Engine, *window.Set, error) {
	names := map[string]string{}
	for _, a := range city.Areas() {
		names[a.Slug] = a.Name
	}
	paneSec := uint32(cfg.WindowSizes[0].D().Seconds())
	for _, d := range cfg.WindowSizes {
		paneSec = min(paneSec, uint32(d.D().Seconds()))
	}
	engine := alert.NewEngine(alert.EngineConfig{AreaNames: names, Scope: scope, PaneMs: int64(paneSec) * 1000,
		Silences: silences}, rules)
	deriver := aqi.NewDeriver()
	mine := func(area string) bool { return keep == nil || keep(area) }

	start := time.Now()
	all, skipped, err := alerts(ctx)
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
	// The longest rule's history, and what the VN_AQI deriver needs (NowCast and corrections).
	from := min(newest-int64(longest.Seconds()), deriver.RestoreFromMs(newest*1000)/1000)
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

// repairAlertsTable writes the transitions JetStream stored but the alerts
// table lacks: the process that published them died before its insert, and
// the restored engine will not decide them again.
func repairAlertsTable(ctx context.Context, st history, all []alert.Alert, log zerolog.Logger) error {
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
	set := map[string]bool{}
	for _, p := range aqi.Pollutants {
		set[p] = true
	}
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
func restoreWindows(ctx context.Context, cfg config.Config, st history, ackFloor uint64, keep func(area string) bool,
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
