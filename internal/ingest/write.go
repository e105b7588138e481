package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/internal/window"
)

// The writer: the second goroutine, which writes sealed batches in order
// (alert confirmations, raw rows, rejections, dead letters, windows, alert
// rows), each step retried until it succeeds, and acknowledges each batch
// after everything it carries is durable.

// flushLoop writes sealed batches in order and acknowledges each after
// everything it carries is durable.
func (p *Pipeline) flushLoop(ctx context.Context) error {
	var failed error
	for b := range p.sealed {
		if b.barrier != nil {
			close(b.barrier)
		} else if failed == nil {
			if err := p.write(ctx, b); err != nil {
				failed = err
			} else if b.src != nil {
				if err := p.fence(); err != nil {
					failed = fmt.Errorf("batch written but not acked: %w", err)
				} else if err := b.src.Ack(string(b.ackReply)); err != nil {
					// Not fatal: the messages come again and dedup absorbs them.
					p.log.Warn().Err(err).Msg("ack failed; the batch will be redelivered")
				}
			}
		}
		b.reset()
		p.free <- b
	}
	return failed
}

// write stores a batch, retrying each step with back-off until it succeeds
// or ctx ends. Steps that succeeded are not repeated.
func (p *Pipeline) write(ctx context.Context, b *batch) error {
	steps := []struct {
		name string
		done *bool
		run  func() error
	}{
		{"alerts", &b.doneAlerts, func() error { return p.confirmAlerts(ctx, b) }},
		{"events", &b.doneEvents, func() error {
			return p.timed(ctx, "events", b.events.Len(), func() error { return p.sink.InsertEvents(ctx, &b.events) })
		}},
		{"events too late", &b.doneTooLate, func() error {
			return p.timed(ctx, "events", b.tooLate.Len(), func() error { return p.sink.InsertTooLate(ctx, &b.tooLate) })
		}},
		{"rejected", &b.doneRejected, func() error {
			return p.timed(ctx, "rejected", len(b.rejected), func() error { return p.sink.InsertRejected(ctx, b.rejected) })
		}},
		{"dead letters", &b.doneDead, func() error { return p.publishDead(ctx, b) }},
		{"window_agg", &b.doneWindows, func() error {
			return p.timed(ctx, "window_agg", len(b.windows), func() error { return p.sink.InsertWindows(ctx, b.windows) })
		}},
		{"alerts table", &b.doneAlertRows, func() error {
			if len(b.alerts) == 0 {
				return nil
			}
			rows := make([]alert.Alert, len(b.alerts))
			for i := range b.alerts {
				rows[i] = b.alerts[i].alert
			}
			return p.timed(ctx, "alerts", len(rows), func() error { return p.sink.InsertAlerts(ctx, rows) })
		}},
	}
	for _, st := range steps {
		backoff := 100 * time.Millisecond
		for attempt := 1; !*st.done; attempt++ {
			if err := p.fence(); err != nil {
				return fmt.Errorf("%s not written: %w", st.name, err)
			}
			err := st.run()
			if err == nil {
				*st.done = true
				break
			}
			p.writing.Store(false)
			p.log.Error().Err(err).Str("step", st.name).Int("attempt", attempt).Dur("retry_in", backoff).
				Int("messages_held", b.msgs).Msg("write failed; holding the batch and retrying")
			select {
			case <-ctx.Done():
				return fmt.Errorf("gave up writing %s after %d attempts: %w", st.name, attempt, err)
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}
	if !p.writing.Load() {
		p.log.Info().Msg("writes succeed again")
	}
	p.writing.Store(true)
	for _, r := range b.windows {
		if r.Final {
			b.finalRows++
		}
	}
	p.m.Windows.WithLabelValues("1").Add(float64(b.finalRows))
	p.m.Windows.WithLabelValues("0").Add(float64(len(b.windows) - b.finalRows))
	return nil
}

func (p *Pipeline) timed(ctx context.Context, table string, n int, insert func() error) error {
	if n == 0 {
		return nil
	}
	start := time.Now()
	if err := insert(); err != nil {
		p.m.WriteErrs.WithLabelValues(table).Inc()
		return err
	}
	p.m.WriteTime.WithLabelValues(table).Observe(time.Since(start).Seconds())
	p.m.RowsWritten.WithLabelValues(table).Add(float64(n))
	return nil
}

// confirmAlerts waits until JetStream has stored every transition of the
// batch, republishing those that failed (same Nats-Msg-Id: never twice),
// then shows them on the board. Transitions confirmed by an earlier
// attempt are not waited for again.
func (p *Pipeline) confirmAlerts(ctx context.Context, b *batch) error {
	for i := range b.alerts {
		pa := &b.alerts[i]
		if pa.stored {
			continue
		}
		if pa.future == nil || pa.err != nil {
			if pa.future, pa.err = p.publishAlert(&pa.alert); pa.err != nil {
				return fmt.Errorf("publish alert %s: %w", pa.alert.MsgID(), pa.err)
			}
		}
		if err := broker.AwaitAck(ctx, pa.future, "alert "+pa.alert.MsgID()); err != nil {
			if ctx.Err() == nil {
				pa.future = nil // published again by the next attempt
			}
			return err
		}
		pa.stored = true
		a := &pa.alert
		p.m.AlertTransitions.WithLabelValues(a.Rule, string(a.Severity), string(a.Status)).Inc()
		p.showAlert(*a)
		ev := p.log.Info()
		if a.Severity == alert.Critical && a.Status == alert.StatusFiring {
			ev = p.log.Warn()
		}
		ev.Str("alert", a.ID).Int("seq", a.Seq).Str("rule", a.Rule).Str("status", string(a.Status)).
			Str("severity", string(a.Severity)).Str("area", a.Area).Str("source", a.Source).Float64("value", a.Value).
			Str("subject", a.Subject()).Msg(a.Summary)
	}
	return nil
}

// showAlert puts a stored transition on the board and in ioc_alerts_firing.
func (p *Pipeline) showAlert(a alert.Alert) {
	if p.alerts.Board != nil {
		p.alerts.Board.Apply(a)
	}
	if p.alerts.Notify != nil {
		p.alerts.Notify.Apply(a)
	}
	if a.Status == alert.StatusFiring {
		p.firing[a.Fingerprint] = a.Severity
	} else {
		delete(p.firing, a.Fingerprint)
	}
	counts := map[alert.Severity]int{alert.Info: 0, alert.Warning: 0, alert.Critical: 0}
	for _, sev := range p.firing {
		counts[sev]++
	}
	for sev, n := range counts {
		v := p.shown.firing[sev]
		addGauge(p.m.AlertsFiring.WithLabelValues(string(sev)), &v, float64(n))
		p.shown.firing[sev] = v
	}
}

// shown is what one pipeline added to the shared gauges. Several
// pipelines (one per owned partition) add to the same gauges, so each
// adds the change of its own value and takes it back when it stops.
type shown struct {
	sources, open, pending float64
	firing                 map[alert.Severity]float64
}

func addGauge(g prometheus.Gauge, mine *float64, v float64) {
	g.Add(v - *mine)
	*mine = v
}

// hideGauges takes this pipeline's share out of the gauges: a partition
// handed over is counted by its new owner.
func (p *Pipeline) hideGauges() {
	addGauge(p.m.Sources, &p.shown.sources, 0)
	addGauge(p.m.Open, &p.shown.open, 0)
	addGauge(p.m.Pending, &p.shown.pending, 0)
	for sev, v := range p.shown.firing {
		addGauge(p.m.AlertsFiring.WithLabelValues(string(sev)), &v, 0)
		p.shown.firing[sev] = v
	}
}

// publishDead publishes every rejection of the batch on ioc.dlq.<kind> with
// the original bytes and waits for JetStream to store them all. The
// Nats-Msg-Id makes a republication after a crash a no-op.
func (p *Pipeline) publishDead(ctx context.Context, b *batch) error {
	futures := make([]jetstream.PubAckFuture, 0, len(b.rejected))
	for i, r := range b.rejected {
		f, err := p.js.PublishMsgAsync(broker.DeadLetter(b.deadKinds[i], r.Reason, r.Detail, r.Subject, r.StreamSeq, r.Payload))
		if err != nil {
			return fmt.Errorf("publish dead letter for stream seq %d: %w", r.StreamSeq, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		if err := broker.AwaitAck(ctx, f, fmt.Sprintf("dead letter for stream seq %d", b.rejected[i].StreamSeq)); err != nil {
			return err
		}
		p.m.DeadLetter.WithLabelValues(b.deadKinds[i]).Inc()
	}
	return nil
}

// batch is what one cumulative ack covers.
type batch struct {
	msgs      int
	ackReply  []byte // the ack subject of the delivery whose ack covers the batch
	src       Source // that acks it
	pending   uint64
	events    store.EventRows
	tooLate   store.EventRows // dropped as too late: stored raw unless the id is stored already
	rejected  []store.Rejected
	deadKinds []string
	windows   []window.Row
	alerts    []pendingAlert
	finalRows int
	barrier   chan struct{} // set on an empty batch: closed once all before it are written

	doneAlerts, doneEvents, doneTooLate, doneRejected, doneDead, doneWindows, doneAlertRows bool
}

// pendingAlert is a transition on its way to JetStream.
type pendingAlert struct {
	alert  alert.Alert
	future jetstream.PubAckFuture
	err    error
	stored bool
}

func (b *batch) reset() {
	windows := b.windows[:0]
	events, tooLate := b.events, b.tooLate
	events.Reset()
	tooLate.Reset()
	clear(b.alerts)
	*b = batch{events: events, tooLate: tooLate, windows: windows, rejected: b.rejected[:0], deadKinds: b.deadKinds[:0], alerts: b.alerts[:0],
		ackReply: b.ackReply[:0]}
}
