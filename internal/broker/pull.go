package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/inbox"
)

// ErrDeliveryEnded means a Pull can deliver no more: its connection is
// closed, or the server deleted the consumer or refused the pull request.
var ErrDeliveryEnded = errors.New("broker: delivery ended")

// Pull is a raw pull subscription on a durable consumer: an inbox on a
// connection of its own (package inbox), and the pull requests that fill
// it. Deliveries are views into that connection's buffers: nats.go's
// subscription allocated and copied every message and parsed its headers
// into a map, about a sixth of iocd's CPU on a backlog drain with the
// garbage it made. jetstream.MessagesContext added, per message, a
// wrapper, a status check and a new heartbeat timer. The pipeline keeps
// its own check that deliveries arrive in order (AckSeqs).
//
// Acks go over nats.go's connection, so they work after Stop.
//
// A Pull is not safe for concurrent use, except Ack.
type Pull struct {
	nc      *nats.Conn
	conn    *inbox.Conn // nil while the delivery connection is down
	req     string      // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
	inbox   string
	batch   int // messages asked for at most, and per request
	expires time.Duration
	hb      time.Duration
	log     zerolog.Logger

	// asked counts the messages requested and neither delivered nor
	// expired; a new request tops it up when it falls to half a batch.
	asked int
	// Liveness: the server sends a heartbeat to an idle request. If
	// nothing arrived for two of them, the requests are presumed lost and
	// made again.
	seen       uint64 // messages and heartbeats so far
	seenAtTick uint64
	tickAt     time.Time
	body       []byte
	// Redialling the delivery connection after it failed.
	retryAt time.Time
	backoff time.Duration
	stopped bool
}

// Pull request settings: long-lived requests, so nats-server seldom
// handles one; heartbeats often enough to notice a lost request quickly.
const (
	pullExpires   = 30 * time.Second
	pullHeartbeat = 5 * time.Second
	// How long to wait between attempts to reopen the delivery connection.
	redialMin, redialMax = 100 * time.Millisecond, 2 * time.Second
)

// Pull opens a raw pull subscription on the consumer that asks for at most
// the consumer's prefetch at a time.
func (c *Consumer) Pull() (*Pull, error) {
	nc := c.js.Conn()
	return newPull(nc, EventsStream, c.cfg.Durable, c.pre, pullExpires, pullHeartbeat, c.log)
}

// newPull's heartbeat must be at most half of expires (nats-server refuses
// the request otherwise).
func newPull(nc *nats.Conn, stream, consumer string, batch int, expires, hb time.Duration, log zerolog.Logger) (*Pull, error) {
	p := &Pull{nc: nc, req: "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer, inbox: nc.NewInbox(),
		batch: max(batch, 1), expires: expires, hb: hb, log: log, tickAt: time.Now(), backoff: redialMin}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.dial(ctx); err != nil {
		return nil, fmt.Errorf("broker: pull from %s: %w", consumer, err)
	}
	return p, nil
}

func (p *Pull) dial(ctx context.Context) error {
	conn, err := dialInbox(ctx, p.nc, p.inbox, func(err error) {
		p.log.Warn().Err(err).Msg("NATS refused a pull request")
	})
	if err != nil {
		return err
	}
	p.conn = conn
	p.asked = 0 // requests made on the old connection answer into nothing
	p.seenAtTick, p.tickAt = p.seen, time.Now()
	p.backoff = redialMin
	return nil
}

// redial reopens the delivery connection, waiting between attempts; it
// returns ctx's error when ctx ends first.
func (p *Pull) redial(ctx context.Context) error {
	for {
		if p.nc.IsClosed() {
			return fmt.Errorf("%w: %v", ErrDeliveryEnded, nats.ErrConnectionClosed)
		}
		if wait := time.Until(p.retryAt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		err := p.dial(ctx)
		if err == nil {
			p.log.Info().Msg("delivery connection to NATS open again")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errNATSAway) {
			p.log.Warn().Err(err).Dur("retry_in", p.backoff).Msg("cannot reopen the delivery connection to NATS")
		}
		p.retryAt = time.Now().Add(p.backoff)
		p.backoff = min(2*p.backoff, redialMax)
	}
}

// lost drops a failed delivery connection; the next call redials.
func (p *Pull) lost(err error) {
	p.log.Warn().Err(err).Msg("delivery connection to NATS lost; reopening it")
	_ = p.conn.Close()
	p.conn = nil
	p.retryAt = time.Now()
}

// Next returns the next delivery, valid until the next call: the pipeline
// copies what it keeps. It returns ctx's error when ctx ends first, and
// ErrDeliveryEnded, wrapped, when no delivery can come any more.
func (p *Pull) Next(ctx context.Context) (*inbox.Msg, error) {
	for {
		if p.stopped {
			return nil, fmt.Errorf("%w: stopped", ErrDeliveryEnded)
		}
		if p.conn == nil {
			if err := p.redial(ctx); err != nil {
				return nil, err
			}
		}
		if p.asked <= p.batch/2 {
			if err := p.ask(p.batch - p.asked); err != nil {
				p.lost(err)
				continue
			}
		}
		msg, err := p.conn.Next(ctx)
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			p.idle()
			return nil, err
		default:
			p.lost(err)
			continue
		}
		p.seen++
		// Deliveries carry their ack subject; status messages have none.
		if msg.Reply != "" {
			// Above zero: after a presumed loss, requests thought gone may
			// still deliver.
			p.asked = max(p.asked-1, 0)
			return msg, nil
		}
		if err := p.status(msg.Header); err != nil {
			return nil, err
		}
	}
}

// status handles a status message: a heartbeat, an expired request, or a
// reason why requests were dropped.
func (p *Pull) status(hdr []byte) error {
	code, descr := inbox.Status(hdr)
	switch code {
	case "100": // idle heartbeat or flow control
	case "404", "408": // a request ended; its unfilled part comes back
		left, err := strconv.Atoi(inbox.HeaderValue(hdr, "Nats-Pending-Messages"))
		if err != nil {
			left = p.asked // a request without the count: ask again
		}
		p.asked = max(p.asked-left, 0)
	case "409":
		if strings.Contains(strings.ToLower(descr), "consumer deleted") {
			return fmt.Errorf("%w: consumer deleted", ErrDeliveryEnded)
		}
		// Leadership change, server shutdown, too many waiting requests:
		// the requests are gone.
		p.log.Warn().Str("status", code).Str("description", descr).Msg("pull requests dropped by the server; asking again")
		p.asked = 0
	case "400":
		return fmt.Errorf("%w: pull request refused: %s", ErrDeliveryEnded, descr)
	default:
		p.log.Warn().Str("status", code).Str("description", descr).Msg("unexpected status on the pull subscription")
	}
	return nil
}

// idle runs when a wait ended without a message: it renews the requests
// when the server has gone quiet.
func (p *Pull) idle() {
	now := time.Now()
	if p.seen != p.seenAtTick {
		p.seenAtTick, p.tickAt = p.seen, now
		return
	}
	if p.asked > 0 && now.Sub(p.tickAt) > 2*p.hb {
		p.log.Warn().Dur("silent_for", now.Sub(p.tickAt)).Msg("no heartbeat from the pull requests; asking again")
		p.asked = 0
		p.tickAt = now
	}
}

// ask sends a pull request on the delivery connection, so that the server
// has the inbox's subscription before it answers.
func (p *Pull) ask(n int) error {
	p.body = p.body[:0]
	p.body = append(p.body, `{"batch":`...)
	p.body = strconv.AppendInt(p.body, int64(n), 10)
	p.body = append(p.body, `,"expires":`...)
	p.body = strconv.AppendInt(p.body, int64(p.expires), 10)
	p.body = append(p.body, `,"idle_heartbeat":`...)
	p.body = strconv.AppendInt(p.body, int64(p.hb), 10)
	p.body = append(p.body, '}')
	if err := p.conn.Publish(p.req, p.inbox, p.body); err != nil {
		return err
	}
	p.asked += n
	return nil
}

// Ack acknowledges the delivery whose ack subject is reply and, the
// consumer's acks being cumulative, every delivery before it. It works
// after Stop.
func (p *Pull) Ack(reply string) error {
	if reply == "" {
		return errors.New("broker: ack of a message without a reply subject")
	}
	return p.nc.Publish(reply, []byte("+ACK"))
}

// Stop ends the subscription. Requests still open on the server deliver
// into nothing; the next Pull starts after a consumer reset (see the
// pipeline's restart).
func (p *Pull) Stop() {
	p.stopped = true
	if p.conn != nil {
		if err := p.conn.Close(); err != nil {
			p.log.Debug().Err(err).Msg("closing the delivery connection")
		}
		p.conn = nil
	}
}
