package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/sim"
)

// maxFutureSkew mirrors the processor's default: simulated events further
// ahead of the wall clock are rejected as time_in_future.
const maxFutureSkew = 5 * time.Minute

// counters are shared with the NATS callbacks and the progress reporter.
type counters struct {
	published atomic.Int64 // handed to the client
	acked     atomic.Int64 // acknowledged by JetStream (stored or recognised as duplicates)
	dropped   atomic.Int64 // acknowledged as duplicates inside the stream's window
	errors    atomic.Int64 // failed publishes and negative acks
	simMs     atomic.Int64 // simulated clock after the latest publish
}

type publisher struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	gen  *sim.Generator
	opts options
	cfg  sim.Config
	c    *counters
	log  zerolog.Logger

	zone    *time.Location // the simulated city's, for log lines
	started time.Time
	// Written by the publishing goroutine only, read after it finishes.
	invalid map[string]int64
	dups    int64
	late    int64
}

func (p *publisher) loop(ctx context.Context) {
	p.started = time.Now()
	p.invalid = map[string]int64{}
	p.c.simMs.Store(p.gen.SimTime().UnixMilli())
	var deadline time.Time
	if p.opts.duration > 0 {
		deadline = p.started.Add(p.opts.duration)
	}
	var bucket *tokenBucket
	if p.opts.rate > 0 {
		bucket = newTokenBucket(p.opts.rate, p.started)
	}
	for ctx.Err() == nil {
		if p.opts.count > 0 && p.c.published.Load() >= p.opts.count {
			return
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return
		}
		if bucket != nil {
			// The simulated clock follows the wall clock; the rate only
			// caps how fast it may go.
			elapsed := now.Sub(p.started)
			target := p.cfg.Start.Add(time.Duration(float64(elapsed) * p.opts.speedup))
			if next := p.gen.NextTime(); next.After(target) {
				p.sleep(ctx, time.Duration(float64(next.Sub(p.cfg.Start))/p.opts.speedup)-elapsed, deadline)
				continue
			}
			if wait := bucket.take(now); wait > 0 {
				p.sleep(ctx, wait, deadline)
				continue
			}
		}
		if !p.publish(ctx, p.gen.Next()) {
			return
		}
	}
}

// publish hands m to the client. It reports false when publishing cannot go
// on (the connection is closed).
func (p *publisher) publish(ctx context.Context, m sim.Message) bool {
	msg := &nats.Msg{Subject: m.Subject, Data: m.Data}
	if m.MsgID != "" {
		msg.Header = nats.Header{jetstream.MsgIDHeader: []string{m.MsgID}}
	}
	for {
		_, err := p.js.PublishMsgAsync(msg)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			// maxInFlight acks outstanding: wait for room rather than drop.
			if ctx.Err() != nil {
				return true
			}
			continue
		}
		if n := p.c.errors.Add(1); n <= 5 || n%1000 == 0 {
			p.log.Warn().Err(err).Int64("errors", n).Str("subject", m.Subject).Msg("publish failed")
		}
		if p.nc.IsClosed() {
			p.log.Error().Msg("NATS connection closed, stopping")
			return false
		}
		// Typically reconnecting with a full buffer: don't spin.
		p.sleep(ctx, 100*time.Millisecond, time.Time{})
		return true
	}
	p.c.published.Add(1)
	simNow := p.gen.SimTime()
	p.c.simMs.Store(simNow.UnixMilli())
	switch {
	case m.Reason != "":
		p.invalid[m.Reason]++
	case m.Dup:
		p.dups++
	case m.EventTime.Before(simNow):
		p.late++
	}
	return true
}

// sleep waits for d (at most 250 ms, so that Ctrl-C and the deadline are
// noticed promptly) unless ctx ends first.
func (p *publisher) sleep(ctx context.Context, d time.Duration, deadline time.Time) {
	d = min(d, 250*time.Millisecond)
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// drain waits for the acks of everything published. It reports whether all
// arrived in time.
func (p *publisher) drain() bool {
	if n := p.js.PublishAsyncPending(); n > 0 {
		p.log.Info().Int("pending", n).Msg("waiting for outstanding acks")
	}
	select {
	case <-p.js.PublishAsyncComplete():
		return true
	case <-time.After(drainWait):
		p.log.Error().Int("pending", p.js.PublishAsyncPending()).Dur("waited", drainWait).Msg("gave up waiting for acks")
		return false
	}
}

// startProgress logs a progress line every --progress until the returned
// function is called.
func (p *publisher) startProgress() (stop func()) {
	if p.opts.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.opts.progress)
		defer t.Stop()
		var lastPub, lastAck int64
		last := time.Now()
		var warnedAhead, warnedBehind bool
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				pub, ack := p.c.published.Load(), p.c.acked.Load()
				dt := now.Sub(last).Seconds()
				simNow := time.UnixMilli(p.c.simMs.Load()).In(p.zone)
				p.log.Info().
					Int64("published", pub).
					Int64("acked", ack).
					Int64("dup_dropped", p.c.dropped.Load()).
					Int64("errors", p.c.errors.Load()).
					Int("pending", p.js.PublishAsyncPending()).
					Float64("rate", round1(float64(pub-lastPub)/dt)).
					Float64("ack_rate", round1(float64(ack-lastAck)/dt)).
					Time("sim_time", simNow).
					Str("scenario", string(p.cfg.Scenario)).
					Msg("progress")
				lastPub, lastAck, last = pub, ack, now

				if !warnedAhead && simNow.After(now.Add(maxFutureSkew)) {
					warnedAhead = true
					p.log.Warn().Time("sim_time", simNow).
						Msg("the simulated clock is ahead of the wall clock: iocd rejects these events as time_in_future; use an earlier --start or a lower --speedup")
				}
				if p.opts.rate > 0 && !warnedBehind {
					target := p.cfg.Start.Add(time.Duration(float64(now.Sub(p.started)) * p.opts.speedup))
					if target.Sub(simNow) > time.Minute {
						warnedBehind = true
						p.log.Warn().Float64("rate", p.opts.rate).Float64("speedup", p.opts.speedup).
							Msg("--rate holds the simulated clock back: raise --rate or lower --speedup")
					}
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func (p *publisher) summary() {
	elapsed := time.Since(p.started)
	pub := p.c.published.Load()
	reasons := zerolog.Dict()
	var bad int64
	for _, r := range sim.Reasons() {
		if n := p.invalid[r]; n > 0 {
			reasons.Int64(r, n)
			bad += n
		}
	}
	p.log.Info().
		Int64("published", pub).
		Int64("acked", p.c.acked.Load()).
		Int64("dup_dropped", p.c.dropped.Load()).
		Int64("errors", p.c.errors.Load()).
		Int64("invalid", bad).
		Dict("invalid_by_reason", reasons).
		Int64("duplicates", p.dups).
		Int64("late", p.late).
		Float64("elapsed_s", round1(elapsed.Seconds())).
		Float64("rate", round1(float64(pub)/elapsed.Seconds())).
		Time("sim_start", p.cfg.Start.In(p.zone)).
		Time("sim_end", time.UnixMilli(p.c.simMs.Load()).In(p.zone)).
		Str("scenario", string(p.cfg.Scenario)).
		Msg("done")
}

func round1(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}

// tokenBucket paces publishing at a rate with a small burst allowance, so
// that timer granularity does not lower the achieved rate.
type tokenBucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func newTokenBucket(rate float64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: 1, burst: max(1, rate/20), last: now}
}

// take consumes a token, or returns how long to wait for one.
func (b *tokenBucket) take(now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
