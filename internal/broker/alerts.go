package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
)

// Headers of an alert message besides Nats-Msg-Id.
const (
	headerEvalTime = "Ioc-Eval-Time"
	headerSeq      = "Ioc-Alert-Seq"
	headerEarly    = "Ioc-Early"
	headerAction   = "Ioc-Action"
	// HeaderSilenced is "true" on a transition some silence matched, so a
	// notifier can skip it without parsing the JSON (CONTRACT.md section 8).
	HeaderSilenced = "Ioc-Silenced"
)

// AlertMsg is the message of one alert transition: the contract JSON on
// ioc.alerts.<severity>.<kind>.<area>, with Nats-Msg-Id <id>:<seq> so that
// JetStream drops a republication after a crash.
func AlertMsg(a *alert.Alert) (*nats.Msg, error) {
	data, err := a.JSON()
	if err != nil {
		return nil, fmt.Errorf("broker: encode alert %s: %w", a.MsgID(), err)
	}
	h := nats.Header{
		jetstream.MsgIDHeader: []string{a.MsgID()},
		headerSeq:             []string{strconv.Itoa(a.Seq)},
		headerEvalTime:        []string{a.EvalTime.UTC().Format(time.RFC3339Nano)},
	}
	if a.Early {
		h.Set(headerEarly, "true")
	}
	if len(a.SilencedBy) > 0 {
		h.Set(HeaderSilenced, "true")
	}
	if a.Action != nil {
		act, err := json.Marshal(a.Action)
		if err != nil {
			return nil, fmt.Errorf("broker: encode the action of alert %s: %w", a.MsgID(), err)
		}
		h.Set(headerAction, string(act))
	}
	return &nats.Msg{Subject: a.Subject(), Data: data, Header: h}, nil
}

// parseAlert reads back a message written by AlertMsg.
func parseAlert(data []byte, h nats.Header) (alert.Alert, error) {
	var a alert.Alert
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("not an alert: %w", err)
	}
	seq, err := strconv.Atoi(h.Get(headerSeq))
	if err != nil {
		// Fall back to the message id, <id>:<seq>.
		_, s, _ := strings.Cut(h.Get(jetstream.MsgIDHeader), ":")
		if seq, err = strconv.Atoi(s); err != nil {
			return a, fmt.Errorf("alert %s has no transition sequence", a.ID)
		}
	}
	a.Seq = seq
	a.EvalTime = a.UpdatedAt
	if t, err := time.Parse(time.RFC3339Nano, h.Get(headerEvalTime)); err == nil {
		a.EvalTime = t
	}
	a.Early = h.Get(headerEarly) == "true"
	if act := h.Get(headerAction); act != "" {
		a.Action = new(alert.Action)
		if err := json.Unmarshal([]byte(act), a.Action); err != nil {
			return a, fmt.Errorf("alert %s: bad %s header: %w", a.MsgID(), headerAction, err)
		}
	}
	return a, nil
}

// ReadAlerts reads every transition in IOC_ALERTS, in stream order: the
// alert engine continues from the last one of each fingerprint after a
// restart. Messages that are not alerts are skipped and counted.
func ReadAlerts(ctx context.Context, js jetstream.JetStream) (all []alert.Alert, skipped int, err error) {
	s, err := js.Stream(ctx, AlertsStream)
	if err != nil {
		return nil, 0, fmt.Errorf("broker: open %s: %w", AlertsStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("broker: %s info: %w", AlertsStream, err)
	}
	end := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, 0, fmt.Errorf("broker: read %s: %w", AlertsStream, err)
	}
	remaining := info.State.Msgs
	for {
		// Ask for no more than is there: Fetch returns once it has them,
		// instead of waiting out FetchMaxWait for a full batch.
		batch, err := c.Fetch(int(min(remaining, 1000)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("broker: read %s: %w", AlertsStream, err)
		}
		var seq uint64
		n := 0
		for msg := range batch.Messages() {
			n++
			remaining--
			if meta, err := msg.Metadata(); err == nil {
				seq = meta.Sequence.Stream
			}
			a, err := parseAlert(msg.Data(), msg.Headers())
			if err != nil {
				skipped++
				continue
			}
			all = append(all, a)
		}
		if err := batch.Error(); err != nil {
			return nil, 0, fmt.Errorf("broker: read %s: %w", AlertsStream, err)
		}
		if seq >= end || n == 0 || remaining == 0 {
			return all, skipped, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// FollowAlerts hands every transition stored in IOC_ALERTS, from the first
// on, to fn until ctx ends. In partitioned mode each process's board
// follows the stream, so every replica shows the whole city's alerts, not
// only those of the partitions it owns.
func FollowAlerts(ctx context.Context, js jetstream.JetStream, fn func(alert.Alert), log zerolog.Logger) error {
	c, err := js.OrderedConsumer(ctx, AlertsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("broker: follow %s: %w", AlertsStream, err)
	}
	cc, err := c.Consume(func(msg jetstream.Msg) {
		a, err := parseAlert(msg.Data(), msg.Headers())
		if err != nil {
			log.Warn().Err(err).Str("subject", msg.Subject()).Msg("not an alert transition; not shown")
			return
		}
		fn(a)
	})
	if err != nil {
		return fmt.Errorf("broker: follow %s: %w", AlertsStream, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
