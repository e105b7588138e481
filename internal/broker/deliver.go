package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/subject"
)

// AckSeqs reads the stream sequence, the consumer (delivery) sequence and
// the pending count from a JetStream ack subject without allocating:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// the longer form with domain and account hash (two more tokens first).
// Zeros for anything else. It runs for every delivery, so it walks only to
// the tokens it needs.
func AckSeqs(reply string) (seq, cseq, pending uint64) {
	off := 0
	switch n := strings.Count(reply, ".") + 1; {
	case n == 9:
	case n >= 11:
		off = 2
	default:
		return 0, 0, 0
	}
	want := [3]int{5 + off, 6 + off, 8 + off}
	var got [3]uint64
	k, tok, start := 0, 0, 0
	for i := 0; k < len(want); i++ {
		if i < len(reply) && reply[i] != '.' {
			continue
		}
		if tok == want[k] {
			got[k] = decimal(reply[start:i])
			k++
		}
		tok, start = tok+1, i+1
	}
	return got[0], got[1], got[2]
}

// decimal is strconv.ParseUint's value, or 0 when it fails on syntax.
func decimal(s string) uint64 {
	if len(s) == 0 || len(s) > 19 {
		n, _ := strconv.ParseUint(s, 10, 64)
		return n
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// DeadLetter is the message of a rejected event (CONTRACT.md section 1):
// the payload unchanged on ioc.dlq.<kind>, with the reason, a human detail,
// the subject it was published on and its IOC_EVENTS sequence, and a
// Nats-Msg-Id from that sequence so a retry is stored once.
func DeadLetter(kind, reason, detail, published string, streamSeq uint64, payload []byte) *nats.Msg {
	seq := strconv.FormatUint(streamSeq, 10)
	return &nats.Msg{Subject: subject.DeadLetter(kind), Data: payload, Header: nats.Header{
		"Ioc-Reject-Reason":    []string{reason},
		"Ioc-Reject-Detail":    []string{detail},
		"Ioc-Original-Subject": []string{published},
		"Ioc-Stream-Seq":       []string{seq},
		jetstream.MsgIDHeader:  []string{"dlq:" + seq},
	}}
}

// AwaitAck waits for JetStream to store a message published asynchronously,
// for at most ackTimeout; what names the message in the error.
func AwaitAck(ctx context.Context, f jetstream.PubAckFuture, what string) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("%s not stored: %w", what, err)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(ackTimeout):
		return fmt.Errorf("%s: no ack from JetStream in %s", what, ackTimeout)
	}
}

const ackTimeout = 10 * time.Second
