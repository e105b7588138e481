// Command iocsim simulates Huế city's sensors, cameras and citizen reports
// and publishes their events to JetStream: a demo data source and a load
// generator for iocd.
//
// Live demo of a flood, one simulated minute per wall second:
//
//	iocsim --scenario flood --speedup 60 --rate 1000
//
// Load test, a million messages as fast as JetStream takes them, with some
// invalid, duplicated and late ones:
//
//	iocsim --rate 0 --count 1000000 --bad-ratio 0.01 --dup-ratio 0.02 --late-ratio 0.02
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/sim"
)

const (
	eventsStream = "IOC_EVENTS"
	maxInFlight  = 4000
	// streamWait bounds how long iocsim waits for iocd to create the stream.
	streamWait = time.Minute
	// drainWait bounds the wait for outstanding acks at the end.
	drainWait = 30 * time.Second
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

type options struct {
	natsURL   string
	rate      float64
	duration  time.Duration
	count     int64
	speedup   float64
	seed      int64
	scenario  string
	start     string
	badRatio  float64
	dupRatio  float64
	lateRatio float64
	progress  time.Duration
	logLevel  string
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("iocsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: iocsim [flags]\n\nSimulates Huế city and publishes its events to the %s stream (created by iocd).\n\nFlags:\n", eventsStream)
		fs.PrintDefaults()
	}
	natsDefault := getenv("IOC_NATS_URL")
	if natsDefault == "" {
		natsDefault = "nats://127.0.0.1:4222"
	}
	levelDefault := getenv("IOC_LOG_LEVEL")
	if levelDefault == "" {
		levelDefault = "info"
	}
	fs.StringVar(&o.natsURL, "nats", natsDefault, "NATS server URL(s), comma-separated (env IOC_NATS_URL)")
	fs.Float64Var(&o.rate, "rate", 200, "maximum messages per wall-clock second; 0 = as fast as possible on the simulator's own clock")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this wall-clock time; 0 = until --count or Ctrl-C")
	fs.Int64Var(&o.count, "count", 0, "stop after this many messages; 0 = unlimited")
	fs.Float64Var(&o.speedup, "speedup", 1, "simulated seconds per wall-clock second (with --rate > 0)")
	fs.Int64Var(&o.seed, "seed", 1, "random seed; the same seed, start and settings give the same messages")
	fs.StringVar(&o.scenario, "scenario", string(sim.ScenarioNormal), "normal, flood, pollution or congestion")
	fs.StringVar(&o.start, "start", "", "simulated start time, RFC 3339 (default: now truncated to the minute, moved back when the simulated clock would overtake the wall clock)")
	fs.Float64Var(&o.badRatio, "bad-ratio", 0, "fraction of invalid messages (every rejection reason)")
	fs.Float64Var(&o.dupRatio, "dup-ratio", 0, "fraction of re-published duplicates (half without Nats-Msg-Id)")
	fs.Float64Var(&o.lateRatio, "late-ratio", 0, "fraction of events with a late event time")
	fs.DurationVar(&o.progress, "progress", 2*time.Second, "interval between progress lines; 0 = none")
	fs.StringVar(&o.logLevel, "log-level", levelDefault, "debug, info, warn or error (env IOC_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch {
	case o.rate < 0:
		return o, errors.New("--rate must not be negative")
	case o.speedup <= 0:
		return o, errors.New("--speedup must be positive")
	case o.duration < 0 || o.count < 0 || o.progress < 0:
		return o, errors.New("--duration, --count and --progress must not be negative")
	}
	return o, nil
}

func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Nop(), fmt.Errorf("bad log level %q (want debug, info, warn or error)", level)
	}
	// Humans get a readable console, pipes and log collectors get JSON.
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			w = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05"}
		}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("app", "iocsim").Logger(), nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "iocsim:", err)
		return exitUsage
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "iocsim:", err)
		return exitUsage
	}

	cfg := sim.Config{
		Seed:      o.seed,
		Speedup:   o.speedup,
		Scenario:  sim.Scenario(o.scenario),
		BadRatio:  o.badRatio,
		DupRatio:  o.dupRatio,
		LateRatio: o.lateRatio,
		// Any start will do to learn the city's nominal event rate.
		Start: time.Now(),
	}
	probe, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "iocsim:", err)
		return exitUsage
	}
	if o.start != "" {
		if cfg.Start, err = time.Parse(time.RFC3339Nano, o.start); err != nil {
			fmt.Fprintf(stderr, "iocsim: --start: %v\n", err)
			return exitUsage
		}
	} else {
		cfg.Start = defaultStart(time.Now(), o, probe.NominalRate(), log)
	}
	gen, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "iocsim:", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := &counters{}
	nc, err := nats.Connect(o.natsURL,
		nats.Name("iocsim"),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on our own Close
				log.Warn().Err(err).Msg("disconnected from NATS, reconnecting")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
	)
	if err != nil {
		log.Error().Err(err).Str("nats", o.natsURL).Msg("cannot reach NATS; is iocd (or nats-server) running? set --nats or IOC_NATS_URL")
		return exitFailure
	}
	defer nc.Close()

	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
			c.acked.Add(1)
			if ack.Duplicate {
				c.dropped.Add(1)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if c.errors.Add(1) <= 5 {
				log.Warn().Err(err).Str("subject", m.Subject).Msg("publish failed")
			}
		}),
	)
	if err != nil {
		log.Error().Err(err).Msg("cannot create JetStream context")
		return exitFailure
	}

	if err := waitForStream(ctx, js, log); err != nil {
		if ctx.Err() != nil {
			log.Info().Msg("interrupted while waiting for the stream")
			return exitInterrupted
		}
		log.Error().Err(err).Str("stream", eventsStream).
			Msg("the events stream is not available; iocd creates it at start-up")
		return exitFailure
	}

	log.Info().
		Str("version", version).
		Str("nats", nc.ConnectedUrlRedacted()).
		Str("scenario", string(cfg.Scenario)).
		Time("sim_start", cfg.Start.In(gen.SimTime().Location())).
		Float64("rate", o.rate).
		Float64("speedup", o.speedup).
		Int64("count", o.count).
		Dur("duration", o.duration).
		Int64("seed", o.seed).
		Float64("bad_ratio", o.badRatio).
		Float64("dup_ratio", o.dupRatio).
		Float64("late_ratio", o.lateRatio).
		Float64("events_per_sim_s", gen.NominalRate()).
		Msg("publishing")

	p := &publisher{js: js, nc: nc, gen: gen, opts: o, cfg: cfg, c: c, log: log, zone: gen.SimTime().Location()}
	stopProgress := p.startProgress()
	p.loop(ctx)
	if ctx.Err() != nil {
		log.Info().Msg("interrupted: waiting for outstanding acks, Ctrl-C again to quit at once")
	}
	// A second Ctrl-C while the acks drain kills the process the usual way.
	stop()
	drained := p.drain()
	stopProgress()
	p.summary()

	switch {
	case !drained:
		return exitFailure
	case c.errors.Load() > 0:
		log.Error().Int64("errors", c.errors.Load()).Msg("some messages were not stored")
		return exitFailure
	}
	return exitOK
}

// defaultStart picks a start that keeps the simulated clock behind the wall
// clock: events more than max_future_skew (5 min) ahead of the processor's
// clock are rejected, so a fast simulation must start in the past.
func defaultStart(now time.Time, o options, nominal float64, log zerolog.Logger) time.Time {
	now = now.Truncate(time.Minute)
	if o.rate > 0 && o.speedup <= 1 {
		return now
	}
	var span time.Duration
	switch {
	case o.count > 0:
		span = time.Duration(float64(o.count) / nominal * float64(time.Second))
		if o.rate > 0 && o.duration > 0 {
			span = min(span, time.Duration(float64(o.duration)*o.speedup))
		}
	case o.rate > 0 && o.duration > 0:
		span = time.Duration(float64(o.duration) * o.speedup)
	default:
		span = 24 * time.Hour
		log.Warn().Msg("unbounded fast run: the simulated clock starts 24 h ago and may overtake the wall clock; set --start, --count or --duration")
	}
	return now.Add(-span).Truncate(time.Minute)
}

// waitForStream waits for iocd to create the events stream: starting both
// together must not fail just because iocsim won the race.
func waitForStream(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, streamWait)
	defer cancel()
	var lastLog time.Time
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Stream(reqCtx, eventsStream)
		reqCancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return err
		}
		if time.Since(lastLog) >= 5*time.Second {
			log.Info().Err(err).Str("stream", eventsStream).Msg("waiting for iocd to create the stream")
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
