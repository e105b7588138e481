// Package ingest is the path of an event through iocd: fetch from
// JetStream → decode and validate → windows → batched writes to ClickHouse
// and dead letters → one cumulative ack per batch.
//
// One goroutine decodes and windows (the window state needs no locks), a
// second writes sealed batches; at most two batches exist, so a slow or
// absent ClickHouse stops the fetching instead of growing memory.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/inbox"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/internal/window"
)

// Sink stores what the pipeline produces; *store.Store implements it.
type Sink interface {
	InsertEvents(ctx context.Context, rows *store.EventRows) error
	InsertTooLate(ctx context.Context, rows *store.EventRows) error
	InsertRejected(ctx context.Context, rows []store.Rejected) error
	InsertWindows(ctx context.Context, rows []window.Row) error
	InsertAlerts(ctx context.Context, alerts []alert.Alert) error
}

// Alerter turns events and window panes into alert transitions;
// *alert.Engine implements it. It belongs to the pipeline goroutine.
type Alerter interface {
	Event(ev *event.Event, nowMs int64)
	Windows(ups []window.Update)
	Tick(nowMs int64)
	Take(dst []alert.Alert) []alert.Alert
}

// Deriver computes derived window rows (the hourly vn_aqi) from the
// 1-minute ones; *aqi.Deriver implements it.
type Deriver interface {
	Add(dst, rows []window.Row) []window.Row
}

// Telemetry records per-source data quality; *quality.Tracker implements it.
type Telemetry interface {
	Event(ev *event.Event, disp window.Disposition, latestBefore, nowMs int64)
	Publish(now time.Time)
}

// Board shows published transitions to operators; *alert.Board implements it.
type Board interface {
	Apply(a alert.Alert)
}

// Alerting bundles the alert side of the pipeline; the zero value turns it off.
type Alerting struct {
	Engine  Alerter
	Deriver Deriver
	Board   Board
	// Notify gets the same transitions as Board (the Alertmanager
	// forwarder's share); nil for none.
	Notify Board
	// Firing are the alerts firing at start-up (rebuilt from IOC_ALERTS),
	// shown on the board and counted in ioc_alerts_firing.
	Firing []alert.Alert
}

// Publisher publishes dead letters; jetstream.JetStream implements it.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Source yields deliveries in order and acknowledges them cumulatively, by
// the ack subject (reply) of the last; *broker.Pull implements it. A
// delivery is valid until the next call to Next. Ack must work after Stop:
// the drain acks what it wrote after it stopped pulling.
type Source interface {
	Next(ctx context.Context) (*inbox.Msg, error)
	Ack(reply string) error
	Stop()
}

// Consumer opens a Source and can restart delivery right after the last
// acknowledged message; JetStream adapts *broker.Consumer.
type Consumer interface {
	Open() (Source, error)
	Reset(ctx context.Context) error
}

// JetStream is the Consumer of a durable JetStream consumer.
func JetStream(c *broker.Consumer) Consumer { return jsConsumer{c} }

type jsConsumer struct{ *broker.Consumer }

func (c jsConsumer) Open() (Source, error) {
	p, err := c.Pull()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Config tunes batching.
type Config struct {
	BatchSize     int           // messages per batch
	FlushInterval time.Duration // longest time a message waits before its batch is written
	EarlyInterval time.Duration // how often open windows are written early (final = 0)
	// EvalInterval is how often, between batches, the pipeline looks for
	// sources gone idle (their windows become final) and advances the alert
	// engine's clock (resolve_after, absence): a decision taken while no
	// events arrive should not wait for the next batch. Windows finalised
	// by the watermark reach the engine at the event that finalises them.
	EvalInterval    time.Duration
	MaxFutureSkew   time.Duration
	ShutdownTimeout time.Duration // how long a drain may take on shutdown
	// Fence, when set, is checked before every side effect (an alert or
	// dead-letter publication, each ClickHouse write, the ack): in
	// partitioned mode it fails once this process may no longer own the
	// partition, and the pipeline then stops without writing or acking.
	Fence func() error
	// Skip, when set, names messages this pipeline leaves to another: they
	// are covered by its acks but not processed (in partitioned mode,
	// events stored before the switch whose area is another partition's).
	Skip func(subject string) bool
}

// Pipeline moves events from a Source to a Sink.
type Pipeline struct {
	cfg     Config
	dec     *event.Decoder
	windows *window.Set
	sink    Sink
	js      Publisher // dead letters and alert transitions
	alerts  Alerting
	quality Telemetry // may be nil
	m       *metrics.Metrics
	log     zerolog.Logger
	now     func() time.Time

	cur      *batch
	lastCseq uint64 // consumer sequence of the last delivery handled; 0 = none yet
	scratch  event.Event
	sealed   chan *batch
	free     chan *batch
	counts   counters
	lastSeal time.Time
	early    earlyTurns
	lastEval time.Time
	taken    []alert.Alert
	ups      []window.Update
	panes    []window.Row
	firing   map[string]alert.Severity // by fingerprint; the writer's
	shown    shown                     // this pipeline's share of the gauges

	writing atomic.Bool   // false while ClickHouse writes fail
	pending atomic.Uint64 // IOC_EVENTS messages not yet delivered, as of the last batch
	running atomic.Bool
}

// New builds a pipeline; windows may already hold restored state. js
// publishes the dead letters and the alert transitions.
func New(cfg Config, windows *window.Set, sink Sink, js Publisher, alerts Alerting, quality Telemetry, m *metrics.Metrics,
	log zerolog.Logger) *Pipeline {
	p := &Pipeline{
		cfg:     cfg,
		dec:     event.NewDecoder(cfg.MaxFutureSkew.Milliseconds()),
		windows: windows,
		sink:    sink,
		js:      js,
		alerts:  alerts,
		quality: quality,
		m:       m,
		log:     log,
		now:     time.Now,
		sealed:  make(chan *batch, 1),
		free:    make(chan *batch, 2),
		counts:  newCounters(),
	}
	p.firing = map[string]alert.Severity{}
	p.shown.firing = map[alert.Severity]float64{}
	for _, a := range alerts.Firing {
		p.showAlert(a)
	}
	p.cur = &batch{}
	p.free <- &batch{}
	p.writing.Store(true)
	return p
}

// Pending is the consumer's backlog as of the last batch.
func (p *Pipeline) Pending() float64 { return float64(p.pending.Load()) }

// Healthy reports whether the pipeline is consuming and its last write
// attempt succeeded; /readyz uses it.
func (p *Pipeline) Healthy() bool { return p.running.Load() && p.writing.Load() }

// Run consumes src until ctx is cancelled, then drains: it stops pulling,
// writes and acknowledges what it holds, and returns. The error is nil
// after a clean drain.
func (p *Pipeline) Run(ctx context.Context, cons Consumer) error {
	p.running.Store(true)
	defer p.running.Store(false)
	defer p.hideGauges()
	// Writes outlive ctx so that a drain can finish, but not by more than
	// the shutdown timeout, even if ClickHouse is away when ctx ends.
	drainCtx, cancelDrain := context.WithCancel(context.Background())
	defer cancelDrain()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(p.cfg.ShutdownTimeout, cancelDrain) })
	defer stopTimer()
	flushed := make(chan error, 1)
	go func() { flushed <- p.flushLoop(drainCtx) }()

	// Deliveries a previous process received but never acknowledged would
	// otherwise come back only after AckWait, behind newer messages, and a
	// cumulative ack of the newer ones would cover them unprocessed.
	src, err := p.restart(ctx, cons, nil)
	if err != nil {
		return err
	}
	p.lastSeal, p.lastEval = p.now(), p.now()
	p.early = newEarlyTurns(p.cfg.EarlyInterval, p.cfg.FlushInterval, p.now())
	// One deadline per batch rather than NextMaxWait, which arms a timer
	// for every message: the wait ends when the batch or an alert
	// evaluation is due.
	var due deadline
	due.reset(ctx, p.wake())
	defer due.stop()
	var fatal error
	for ctx.Err() == nil {
		msg, err := src.Next(due.ctx)
		now := p.now()
		switch {
		case err == nil:
			if !p.handle(src, msg, now) {
				// A delivery was lost (a reconnect, a redelivery we did not
				// see): write and ack what came before it, then start over
				// from the ack floor so nothing past the gap is acked unseen.
				p.log.Warn().Uint64("after_consumer_seq", p.lastCseq).Msg("gap in deliveries; restarting delivery from the ack floor")
				p.seal(now, false)
				p.barrier()
				if src, err = p.restart(ctx, cons, src); err != nil {
					return err
				}
			}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		case errors.Is(err, broker.ErrDeliveryEnded):
			// The connection or the consumer is gone for good: drain what
			// is held and stop with an error, so a supervisor restarts us
			// and start-up recreates the consumer.
			fatal = fmt.Errorf("ingest: delivery from IOC_EVENTS ended: %w", err)
			ctx = cancelled()
		default:
			p.log.Warn().Err(err).Msg("fetching from IOC_EVENTS")
		}
		switch {
		case p.cur.msgs >= p.cfg.BatchSize || !now.Before(p.lastSeal.Add(p.cfg.FlushInterval)):
			p.seal(now, false)
			due.reset(ctx, p.wake())
		case p.alerting() && !now.Before(p.lastEval.Add(p.cfg.EvalInterval)):
			p.collect(now, 0, 0)
			due.reset(ctx, p.wake())
		case due.ctx.Err() != nil:
			due.reset(ctx, p.wake())
		}
	}

	src.Stop()
	p.log.Info().Int("held", p.cur.msgs).Msg("draining: stopped pulling, writing what is held")
	p.seal(p.now(), true)
	close(p.sealed)
	if err := <-flushed; err != nil {
		return fmt.Errorf("ingest: drain: %w", err)
	}
	return fatal
}

// fence reports whether this pipeline may still act (see Config.Fence).
func (p *Pipeline) fence() error {
	if p.cfg.Fence == nil {
		return nil
	}
	return p.cfg.Fence()
}

// alerting reports whether an alert engine evaluates between batches.
func (p *Pipeline) alerting() bool { return p.alerts.Engine != nil && p.cfg.EvalInterval > 0 }

// wake is when the loop must act next without a message: the batch's
// flush, or the next alert evaluation.
func (p *Pipeline) wake() time.Time {
	at := p.lastSeal.Add(p.cfg.FlushInterval)
	if p.alerting() {
		if ev := p.lastEval.Add(p.cfg.EvalInterval); ev.Before(at) {
			at = ev
		}
	}
	return at
}

// deadline is a context that ends when the current batch is due.
type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (d *deadline) reset(parent context.Context, at time.Time) {
	d.stop()
	d.ctx, d.cancel = context.WithDeadline(parent, at)
}

func (d *deadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// restart resets the consumer to just after its ack floor and opens a new
// iterator, retrying while NATS is away.
func (p *Pipeline) restart(ctx context.Context, cons Consumer, old Source) (Source, error) {
	if old != nil {
		old.Stop()
	}
	p.lastCseq = 0 // the server numbers deliveries from 1 again after the reset
	backoff := 200 * time.Millisecond
	for {
		err := cons.Reset(ctx)
		if err == nil {
			var src Source
			if src, err = cons.Open(); err == nil {
				return src, nil
			}
		}
		p.log.Warn().Err(err).Dur("retry_in", backoff).Msg("cannot (re)start delivery from IOC_EVENTS")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ingest: start delivery: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// barrier waits until the writer has written and acknowledged every batch
// sealed so far.
func (p *Pipeline) barrier() {
	done := make(chan struct{})
	b := <-p.free
	b.barrier = done
	p.sealed <- b
	<-done
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// handle decodes one message and routes it: rejected → dead letter,
// duplicate → counted only, otherwise → raw row and windows. It returns
// false, leaving the message alone, when a delivery before it was lost.
func (p *Pipeline) handle(src Source, msg *inbox.Msg, now time.Time) bool {
	seq, cseq, pending := broker.AckSeqs(msg.Reply)
	// After a reset the server delivers from consumer sequence 1. A first
	// delivery with a higher one means an older pull request, still open
	// on the server after Stop, took the first redeliveries: acking past
	// them would cover messages never processed.
	if cseq != p.lastCseq+1 {
		return false
	}
	p.lastCseq = cseq
	b := p.cur
	b.msgs++
	// A copy: the delivery's bytes are reused after the next Next.
	b.ackReply, b.src = append(b.ackReply[:0], msg.Reply...), src
	b.pending = pending
	if p.cfg.Skip != nil && p.cfg.Skip(msg.Subject) {
		return true
	}
	nowMs := now.UnixMilli()
	ev := &p.scratch
	if rej := p.decode(msg, nowMs, ev); rej != nil {
		p.counts.rejected[rejKey{rej.Kind, rej.Reason}]++
		p.counts.received[rej.Kind]++
		b.rejected = append(b.rejected, store.Rejected{
			ReceivedSec: now.Unix(), Subject: strings.Clone(broker.PublishedSubject(msg.Subject)), StreamSeq: seq,
			Reason: string(rej.Reason), Detail: rej.Detail, Payload: bytes.Clone(msg.Data),
		})
		b.deadKinds = append(b.deadKinds, rej.Kind)
		return true
	}
	k := p.counts.kind(ev.Kind)
	k.received++
	k.accepted++
	disp, latestBefore := p.windows.Add(ev, nowMs)
	if p.windows.HasUpdates() {
		// Before the event itself: the panes its watermark closed come
		// first in the stream, as they do for the alert engine.
		p.feed(b)
	}
	if p.quality != nil {
		p.quality.Event(ev, disp, latestBefore, nowMs)
	}
	switch disp {
	case window.Duplicate:
		k.duplicate++
		return true
	case window.Corrected:
		k.corrected++
	case window.Dropped:
		k.dropped++
	}
	p.m.EventLag.Observe(float64(nowMs-ev.TimeMs) / 1000)
	if disp == window.Dropped {
		b.tooLate.Append(ev, now.Unix(), latestBefore, seq)
	} else {
		b.events.Append(ev, now.Unix(), latestBefore, seq)
	}
	if p.alerts.Engine != nil {
		p.alerts.Engine.Event(ev, nowMs)
		p.publishAlerts(b)
	}
	return true
}

// publishAlerts takes the engine's new transitions and publishes them at
// once, before the batch is written: an operator should not wait for
// ClickHouse. The writer waits for JetStream's acks before the batch's
// ack; a republication after a crash carries the same Nats-Msg-Id.
func (p *Pipeline) publishAlerts(b *batch) {
	p.taken = p.alerts.Engine.Take(p.taken[:0])
	for _, a := range p.taken {
		pa := pendingAlert{alert: a}
		if pa.err = p.fence(); pa.err == nil {
			pa.future, pa.err = p.publishAlert(&pa.alert)
		}
		b.alerts = append(b.alerts, pa)
	}
}

func (p *Pipeline) publishAlert(a *alert.Alert) (jetstream.PubAckFuture, error) {
	msg, err := broker.AlertMsg(a)
	if err != nil {
		return nil, err
	}
	return p.js.PublishMsgAsync(msg)
}

// decode runs the decoder and turns a panic (a bug, never expected) into a
// rejection, so that no payload can crash the worker and come back for
// ever after each restart.
func (p *Pipeline) decode(msg *inbox.Msg, nowMs int64, ev *event.Event) (rej *event.Rejection) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error().Interface("panic", r).Str("subject", msg.Subject).Msg("decoder panicked; dead-lettering the message")
			rej = &event.Rejection{Reason: event.MalformedJSON, Kind: "unknown", Detail: fmt.Sprintf("internal decoder error: %v", r)}
		}
	}()
	return p.dec.Decode(broker.PublishedSubject(msg.Subject), msg.Data, nowMs, ev)
}

// seal closes the current batch with the window rows due now and hands it
// to the writer; it blocks while the writer still holds the previous one.
func (p *Pipeline) seal(now time.Time, draining bool) {
	shard, shards := p.early.next(now, draining)
	p.lastSeal = now
	p.collect(now, shard, shards)
	b := p.cur
	p.counts.flush(p.m)
	if p.quality != nil {
		p.quality.Publish(now)
	}
	st := p.windows.Stats()
	addGauge(p.m.Sources, &p.shown.sources, float64(st.Sources))
	addGauge(p.m.Open, &p.shown.open, float64(st.OpenWindows))
	if b.msgs == 0 && len(b.windows) == 0 && len(b.alerts) == 0 {
		return
	}
	if b.src != nil {
		addGauge(p.m.Pending, &p.shown.pending, float64(b.pending))
		p.pending.Store(b.pending)
	}
	p.sealed <- b
	p.cur = <-p.free
}

// collect adds the window rows due now to the current batch, with the
// early rows of shard of shards (see window.Set.CollectShard), and, with
// alerting on, evaluates what became final.
func (p *Pipeline) collect(now time.Time, shard, shards int) {
	b := p.cur
	b.windows = p.windows.CollectShard(b.windows, now.UnixMilli(), shard, shards)
	if p.windows.HasUpdates() {
		p.feed(b) // sources gone idle
	}
	if p.alerts.Engine != nil {
		p.alerts.Engine.Tick(now.UnixMilli())
		p.publishAlerts(b)
	}
	p.lastEval = now
}

// feed hands the windows' log to the alert engine, in stream order, with
// the hourly rows it completes (stored with the batch and evaluated too).
// The log is taken even with alerting off, so it does not grow.
func (p *Pipeline) feed(b *batch) {
	p.ups = p.windows.TakeUpdates(p.ups[:0])
	if p.alerts.Engine == nil {
		return
	}
	if p.alerts.Deriver != nil {
		p.panes = p.panes[:0]
		for i := range p.ups {
			if !p.ups[i].Progress {
				p.panes = append(p.panes, p.ups[i].Row)
			}
		}
		n := len(b.windows)
		b.windows = p.alerts.Deriver.Add(b.windows, p.panes)
		for _, r := range b.windows[n:] {
			p.ups = append(p.ups, window.Update{Row: r})
		}
	}
	p.alerts.Engine.Windows(p.ups)
}
