package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/iocstream/iocstream/internal/subject"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/httpapi"
	"github.com/iocstream/iocstream/internal/ingest"
	"github.com/iocstream/iocstream/internal/lease"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/quality"
	"github.com/iocstream/iocstream/internal/silence"
	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/internal/window"
)

// actionSubject carries operators' actions to every iocd: the alert may
// belong to a partition another process owns.
const actionSubject = subject.ActionRequests

// actionRequest is an action on actionSubject.
type actionRequest struct {
	Fingerprint string       `json:"fingerprint"`
	Action      alert.Action `json:"action"`
}

// scaleOut runs the partitions this process owns (docs/scale-out.md): the
// lease manager hands each acquired partition to work, which takes over its
// consumer, rebuilds its state from ClickHouse and runs a pipeline for it.
type scaleOut struct {
	cfg   config.Config
	st    *store.Store
	js    jetstream.JetStream
	rules *engines // nil: alerting off
	// silences marks the transitions each partition's engine decides.
	silences alert.Silencer
	// fwd sends each owned partition's alerts to Alertmanager: only the
	// owner sends (and re-sends) an alert.
	fwd     forwarder
	sources *quality.Tracker
	m       *metrics.Metrics
	log     zerolog.Logger

	mu   sync.Mutex
	live map[string]running // by lease key
}

type running struct {
	pipe    *ingest.Pipeline
	tracker *quality.Tracker
}

func servePartitioned(ctx context.Context, cfg config.Config, st *store.Store, nc *nats.Conn, js jetstream.JetStream,
	rules *engines, silences *silence.Store, fwd forwarder, m *metrics.Metrics, log zerolog.Logger) error {
	n := cfg.Partitions
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := broker.EnsurePartitioned(setupCtx, js, n, cfg.Consumer, log); err != nil {
		return err
	}
	s := &scaleOut{cfg: cfg, st: st, js: js, rules: rules, silences: silencer{silences}, fwd: fwd,
		sources: quality.New(m.Registry), m: m, log: log, live: map[string]running{}}
	var keys []string
	m.PartitionShares.Set(float64(len(broker.Shares(n))))
	for _, sh := range broker.Shares(n) {
		keys = append(keys, sh.Key())
	}
	mgr, err := lease.New(setupCtx, js, lease.Config{Instance: cfg.Instance, TTL: cfg.LeaseTTL.D(),
		Replicas: cfg.StreamReplicas, Keys: keys}, s.work, log)
	if err != nil {
		return err
	}

	var boardAPI httpapi.Alerts
	if rules != nil {
		// The board follows IOC_ALERTS, so every replica shows the whole
		// city; operators' actions go to every process, and the owner of
		// the alert's partition applies them.
		board := alert.NewBoard()
		defer board.Close()
		go func() {
			if err := broker.FollowAlerts(ctx, js, board.Apply, log); err != nil {
				log.Error().Err(err).Msg("the alert board cannot follow IOC_ALERTS")
			}
		}()
		sub, err := nc.Subscribe(actionSubject, func(msg *nats.Msg) {
			var req actionRequest
			if err := json.Unmarshal(msg.Data, &req); err != nil || req.Fingerprint == "" {
				log.Warn().Str("subject", msg.Subject).Msg("malformed alert action ignored")
				return
			}
			if err := req.Action.Validate(); err != nil {
				log.Warn().Err(err).Str("subject", msg.Subject).Msg("invalid alert action ignored")
				return
			}
			rules.Act(req.Fingerprint, req.Action)
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", actionSubject, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		boardAPI = alertAPI{board, func(fingerprint string, a alert.Action) {
			data, _ := json.Marshal(actionRequest{fingerprint, a}) // strings and a time always encode
			if err := nc.Publish(actionSubject, data); err != nil {
				log.Error().Err(err).Str("fingerprint", fingerprint).Msg("alert action not sent")
			}
		}}
	}

	api, err := startAPI(ctx, cfg, m, nc, st, httpapi.Check{Name: "partitions", Run: s.healthy},
		apiParts{board: boardAPI, sources: s, pending: s.pending, rules: rules, silences: silences,
			alertmanager: fwd.status}, log)
	if err != nil {
		return err
	}
	defer shutdownAPI(api)

	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Str("http", api.Addr()).Int("partitions", n).
		Str("instance", mgr.Instance()).Dur("lease_ttl", cfg.LeaseTTL.D()).
		Msg("iocd ready: sharing IOC_EVENTS by partition")
	if err := mgr.Run(ctx); err != nil {
		return err
	}
	log.Info().Msg("partitions handed over; bye")
	return nil
}

// work owns one partition (or the rejects share) until ctx ends or the
// lease is lost.
func (s *scaleOut) work(ctx context.Context, key string, epoch uint64, fence lease.Fence) error {
	share, err := broker.ParseShare(s.cfg.Partitions, key)
	if err != nil {
		return err
	}
	log := s.log.With().Stringer("partition", share).Logger()
	start := time.Now()
	fail := func(err error) error {
		s.m.Takeovers.WithLabelValues("error").Inc()
		return err
	}
	cons, err := broker.TakeOver(ctx, s.js, share.ConsumerPrefix(), epoch, share.Filters(), s.cfg.Consumer,
		broker.ConsumerSettings{MaxAckPending: s.cfg.MaxAckPending, AckWait: s.cfg.AckWait.D(),
			Prefetch: min(s.cfg.BatchSize, 10_000)}, log)
	if err != nil {
		return fail(err)
	}
	floor, err := cons.AckFloor(ctx)
	if err != nil {
		return fail(err)
	}
	var alerting ingest.Alerting
	var windows *window.Set
	// The rejects share reads only malformed subjects: nothing to restore,
	// no windows, no alerts.
	if s.rules != nil && !share.Rejects {
		var engine *alert.Engine
		alerting, engine, windows, err = restoreEngine(ctx, s.cfg, s.st, streamAlerts(s.js), s.rules.current(), s.silences, share.Owns,
			share.Scope(), floor, s.m, log)
		if err != nil {
			return fail(err)
		}
		s.rules.add(engine)
		defer s.rules.remove(engine)
		if sh := s.fwd.share(); sh != nil {
			alerting.Notify = sh
			defer sh.Close()
		}
	} else if windows, err = restoreWindows(ctx, s.cfg, s.st, floor, share.Owns, nil, s.m, log); err != nil {
		return fail(err)
	}
	if err := fence(); err != nil {
		return fail(err)
	}
	pc := pipelineConfig(s.cfg)
	pc.Fence = fence
	pc.Skip = share.Foreign
	tracker := s.sources.Sibling()
	pipe := ingest.New(pc, windows, s.st, s.js, alerting, tracker, s.m, log)
	s.mu.Lock()
	s.live[key] = running{pipe, tracker}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, key)
		s.mu.Unlock()
	}()
	s.m.PartitionsOwned.Inc()
	defer s.m.PartitionsOwned.Dec()
	s.m.Takeovers.WithLabelValues("ok").Inc()
	log.Info().Uint64("epoch", epoch).Uint64("ack_floor", floor).Dur("took", time.Since(start)).
		Msg("partition taken over; consuming")
	err = pipe.Run(ctx, ingest.JetStream(cons))
	if errors.Is(err, lease.ErrLost) {
		log.Error().Err(err).Msg("partition stopped: lease lost; its state is dropped and rebuilt by the next owner")
	}
	return err
}

// healthy is the readiness of the owned partitions' pipelines.
func (s *scaleOut) healthy(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for key, r := range s.live {
		if !r.pipe.Healthy() {
			bad = append(bad, key)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("consumer not bound or ClickHouse writes failing: %s", strings.Join(bad, ", "))
	}
	return nil
}

// pending is the backlog of the owned partitions.
func (s *scaleOut) pending() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	for _, r := range s.live {
		sum += r.pipe.Pending()
	}
	return sum
}

// Snapshot merges the owned partitions' sources for GET /api/v1/sources.
func (s *scaleOut) Snapshot() []quality.Source {
	s.mu.Lock()
	var out []quality.Source
	for _, r := range s.live {
		out = append(out, r.tracker.Snapshot()...)
	}
	s.mu.Unlock()
	quality.Sort(out)
	return out
}
