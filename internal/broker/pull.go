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
)

// ErrDeliveryEnded means a Pull can deliver no more: its connection is
// closed, or the server deleted the consumer or refused the pull request.
var ErrDeliveryEnded = errors.New("broker: delivery ended")

// Pull is a raw pull subscription on a durable consumer: an inbox, and the
// pull requests that fill it. The pipeline takes one message at a time on
// one goroutine, so this does per message only what nats.go's core
// subscription does. jetstream.MessagesContext adds, per message, a
// wrapper, a status check of the header map and a new heartbeat timer:
// about a tenth of iocd's CPU on a backlog drain. The pipeline keeps its
// own check that deliveries arrive in order (AckSeqs).
//
// A Pull is not safe for concurrent use, except Ack.
type Pull struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	req     string // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
	inbox   string
	batch   int // messages asked for at most, and per request
	expires time.Duration
	hb      time.Duration
	log     zerolog.Logger

	// asked counts the messages requested and neither delivered nor
	// expired; a new request tops it up when it falls to half a batch.
	asked int
	// Liveness: the server sends a heartbeat to an idle request. If
	// nothing arrived for two of them, or the connection came back, the
	// requests are presumed lost and made again.
	seen       uint64 // messages and heartbeats so far
	seenAtTick uint64
	tickAt     time.Time
	reconnects uint64
	body       []byte
}

// Pull request settings: long-lived requests, so nats-server seldom
// handles one; heartbeats often enough to notice a lost request quickly.
const (
	pullExpires   = 30 * time.Second
	pullHeartbeat = 5 * time.Second
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
		batch: max(batch, 1), expires: expires, hb: hb, log: log, tickAt: time.Now(), reconnects: nc.Stats().Reconnects}
	sub, err := nc.SubscribeSync(p.inbox)
	if err != nil {
		return nil, fmt.Errorf("broker: pull from %s: %w", consumer, err)
	}
	// The pull requests bound what can wait here; the default limits would
	// drop messages of a large prefetch.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("broker: pull from %s: %w", consumer, err)
	}
	p.sub = sub
	return p, nil
}

// Next returns the next delivery. It returns ctx's error when ctx ends
// first, and ErrDeliveryEnded, wrapped, when no delivery can come any more.
func (p *Pull) Next(ctx context.Context) (*nats.Msg, error) {
	for {
		if p.asked <= p.batch/2 {
			if err := p.ask(p.batch - p.asked); err != nil {
				return nil, err
			}
		}
		msg, err := p.sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			p.idle()
			return nil, err
		case errors.Is(err, nats.ErrSlowConsumer):
			// Messages were dropped; the pipeline sees the gap in
			// delivery sequences and starts over from the ack floor.
			p.log.Warn().Err(err).Msg("pull subscription dropped messages")
			continue
		case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrBadSubscription):
			return nil, fmt.Errorf("%w: %v", ErrDeliveryEnded, err)
		default:
			return nil, err
		}
		p.seen++
		// Deliveries carry their ack subject; status messages have none.
		if msg.Reply != "" {
			// Above zero: after a presumed loss, requests thought gone may
			// still deliver.
			p.asked = max(p.asked-1, 0)
			return msg, nil
		}
		if err := p.status(msg); err != nil {
			return nil, err
		}
	}
}

// status handles a status message: a heartbeat, an expired request, or a
// reason why requests were dropped.
func (p *Pull) status(msg *nats.Msg) error {
	code, descr := msg.Header.Get("Status"), msg.Header.Get("Description")
	switch code {
	case "100": // idle heartbeat or flow control
	case "404", "408": // a request ended; its unfilled part comes back
		left, err := strconv.Atoi(msg.Header.Get("Nats-Pending-Messages"))
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
// after a reconnect or when the server has gone quiet.
func (p *Pull) idle() {
	now := time.Now()
	if rc := p.nc.Stats().Reconnects; rc != p.reconnects {
		p.reconnects = rc
		p.asked = 0
		return
	}
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

func (p *Pull) ask(n int) error {
	p.body = p.body[:0]
	p.body = append(p.body, `{"batch":`...)
	p.body = strconv.AppendInt(p.body, int64(n), 10)
	p.body = append(p.body, `,"expires":`...)
	p.body = strconv.AppendInt(p.body, int64(p.expires), 10)
	p.body = append(p.body, `,"idle_heartbeat":`...)
	p.body = strconv.AppendInt(p.body, int64(p.hb), 10)
	p.body = append(p.body, '}')
	if err := p.nc.PublishRequest(p.req, p.inbox, p.body); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("%w: %v", ErrDeliveryEnded, err)
		}
		// Reconnecting: the request is buffered or lost; either way the
		// reconnect check asks again.
		p.log.Warn().Err(err).Msg("cannot send a pull request")
	}
	p.asked += n
	return nil
}

// Ack acknowledges msg and, the consumer's acks being cumulative, every
// delivery before it. It works after Stop.
func (p *Pull) Ack(msg *nats.Msg) error {
	if msg.Reply == "" {
		return errors.New("broker: ack of a message without a reply subject")
	}
	return p.nc.Publish(msg.Reply, []byte("+ACK"))
}

// Stop ends the subscription. Requests still open on the server deliver
// into nothing; the next Pull starts after a consumer reset (see the
// pipeline's restart).
func (p *Pull) Stop() {
	if err := p.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		p.log.Warn().Err(err).Msg("ending the pull subscription")
	}
}
