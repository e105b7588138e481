// Package broker connects iocd to NATS JetStream: it starts the embedded
// server when no external one is configured, and creates the contract's
// streams and the processor's durable consumer when they are missing.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/subject"
)

// Stream names of the contract.
const (
	EventsStream = subject.EventsStream
	AlertsStream = subject.AlertsStream
	DLQStream    = subject.DLQStream
)

// StartEmbedded runs a JetStream server in this process, listening on
// listen (host:port) and storing under dataDir/nats.
func StartEmbedded(listen, dataDir string, log zerolog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("broker: IOC_NATS_LISTEN %q is not host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker: IOC_NATS_LISTEN port %q: %w", portStr, err)
	}
	opts := &server.Options{
		ServerName: "iocd-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: embedded NATS server not ready on %s within 15 s (port in use?)", listen)
	}
	log.Info().Str("listen", srv.ClientURL()).Str("store", opts.StoreDir).Msg("embedded JetStream server started")
	return srv, nil
}

// Auth holds the optional credentials and TLS settings for an external
// server; each is used when set.
type Auth struct {
	User, Password, Token, CredsFile string
	NKeySeedFile                     string // a user NKey seed file (nsc/nk output)
	TLSCA                            string // CA file to verify the server; implies TLS
	TLSCert, TLSKey                  string // client certificate, for servers that verify clients
}

// Connect dials url and keeps reconnecting for ever: a NATS restart must
// pause the pipeline, not end it.
func Connect(url, name string, auth Auth, log zerolog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if c.IsClosed() {
				return // our own Close, not an outage
			}
			log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info().Str("url", c.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn().Err(err).Msg("NATS error")
		}),
	}
	if auth.User != "" {
		opts = append(opts, nats.UserInfo(auth.User, auth.Password))
	}
	if auth.Token != "" {
		opts = append(opts, nats.Token(auth.Token))
	}
	if auth.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(auth.CredsFile))
	}
	if auth.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(auth.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("broker: NKey seed file (IOC_NATS_NKEY_SEED): %w", err)
		}
		opts = append(opts, opt)
	}
	if auth.TLSCA != "" {
		opts = append(opts, nats.RootCAs(auth.TLSCA))
	}
	if auth.TLSCert != "" || auth.TLSKey != "" {
		opts = append(opts, nats.ClientCert(auth.TLSCert, auth.TLSKey))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: connect to NATS: %w", err)
	}
	return nc, nil
}

// StreamLimits are the retention settings of the three streams.
type StreamLimits struct {
	EventsMaxAge, AlertsMaxAge, DLQMaxAge, DuplicateWindow time.Duration
	// Replicas is the number of copies of each stream in a NATS cluster
	// (3 in production: one node may die); 0 or 1 on a single server.
	Replicas int
}

// EnsureStreams creates the contract's streams when missing. An existing
// stream is left as it is; differences from the wanted settings are logged.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, lim StreamLimits, log zerolog.Logger) error {
	want := []jetstream.StreamConfig{
		{Name: EventsStream, Subjects: []string{subject.AllEvents}, Storage: jetstream.FileStorage,
			MaxAge: lim.EventsMaxAge, Duplicates: lim.DuplicateWindow, Description: "iocstream inbound events"},
		{Name: AlertsStream, Subjects: []string{subject.AllAlerts}, Storage: jetstream.FileStorage,
			MaxAge: lim.AlertsMaxAge, Duplicates: lim.DuplicateWindow, Description: "iocstream alert transitions"},
		{Name: DLQStream, Subjects: []string{subject.AllDLQ}, Storage: jetstream.FileStorage,
			MaxAge: lim.DLQMaxAge, Duplicates: lim.DuplicateWindow, Description: "iocstream rejected events"},
	}
	for _, cfg := range want {
		cfg.Replicas = max(lim.Replicas, 1)
		s, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				return fmt.Errorf("broker: create stream %s: %w", cfg.Name, err)
			}
			log.Info().Str("stream", cfg.Name).Strs("subjects", cfg.Subjects).Dur("max_age", cfg.MaxAge).
				Int("replicas", cfg.Replicas).Msg("created stream")
			continue
		}
		if err != nil {
			return fmt.Errorf("broker: look up stream %s: %w", cfg.Name, err)
		}
		have := s.CachedInfo().Config
		if have.MaxAge != cfg.MaxAge || have.Duplicates != cfg.Duplicates || have.Storage != cfg.Storage ||
			len(have.Subjects) != 1 || have.Subjects[0] != cfg.Subjects[0] || max(have.Replicas, 1) != cfg.Replicas {
			log.Warn().Str("stream", cfg.Name).
				Strs("subjects", have.Subjects).Dur("max_age", have.MaxAge).Dur("duplicates", have.Duplicates).Int("replicas", have.Replicas).
				Strs("want_subjects", cfg.Subjects).Dur("want_max_age", cfg.MaxAge).Dur("want_duplicates", cfg.Duplicates).
				Int("want_replicas", cfg.Replicas).
				Msg("stream exists with other settings; leaving it unchanged")
		}
	}
	return nil
}

// ConsumerSettings configure the processor's durable pull consumer.
type ConsumerSettings struct {
	Durable       string
	MaxAckPending int
	AckWait       time.Duration
	Prefetch      int
}

// Consumer is the processor's durable pull consumer on IOC_EVENTS. Acks
// are cumulative (AckAll: one ack per flushed batch), which is only safe
// while every delivery is seen in order; Reset restores that after a
// restart or a lost delivery.
type Consumer struct {
	js   jetstream.JetStream
	cfg  jetstream.ConsumerConfig
	cons jetstream.Consumer
	pre  int
	log  zerolog.Logger
}

// EnsureConsumer creates or updates the durable consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cs ConsumerSettings, log zerolog.Logger) (*Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       cs.Durable,
		Description:   "iocd ingest",
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       cs.AckWait,
		MaxAckPending: cs.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: subject.AllEvents,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: consumer %s on %s: %w", cs.Durable, EventsStream, err)
	}
	return &Consumer{js: js, cfg: cfg, cons: c, pre: max(cs.Prefetch, 1), log: log}, nil
}

// AckFloor returns the stream sequence up to which every message has been
// acknowledged.
func (c *Consumer) AckFloor(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("broker: consumer %s info: %w", c.cfg.Durable, err)
	}
	return info.AckFloor.Stream, nil
}

// Reset forgets deliveries not yet acknowledged, so that delivery starts
// again, in order, right after the last acknowledged message. Servers
// without the reset API (before 2.12) get the consumer recreated from the
// same place.
func (c *Consumer) Reset(ctx context.Context) error {
	_, err := c.js.ResetConsumer(ctx, EventsStream, c.cfg.Durable)
	if err == nil {
		return nil
	}
	c.log.Warn().Err(err).Msg("consumer reset API unavailable; recreating the consumer at its ack floor")
	info, ierr := c.cons.Info(ctx)
	if ierr != nil {
		return fmt.Errorf("broker: reset consumer %s: %w (and info: %v)", c.cfg.Durable, err, ierr)
	}
	cfg := c.cfg
	cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
	cfg.OptStartSeq = info.AckFloor.Stream + 1
	if derr := c.js.DeleteConsumer(ctx, EventsStream, c.cfg.Durable); derr != nil {
		return fmt.Errorf("broker: recreate consumer %s: %w", c.cfg.Durable, derr)
	}
	cons, cerr := c.js.CreateConsumer(ctx, EventsStream, cfg)
	if cerr != nil {
		return fmt.Errorf("broker: recreate consumer %s at %d: %w", c.cfg.Durable, cfg.OptStartSeq, cerr)
	}
	c.cons = cons
	return nil
}
