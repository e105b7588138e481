package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/inbox"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/store"
	"github.com/iocstream/iocstream/internal/window"
)

// A fake JetStream consumer that behaves like the server where it matters
// here: deliveries carry increasing consumer sequences, a cumulative ack
// moves the ack floor, and Reset redelivers everything after the floor.
type fakeConsumer struct {
	mu       sync.Mutex
	payloads [][]byte // stream seq i+1
	floor    uint64
	cseq     uint64
	resets   int
	lose     map[uint64]bool // stream seqs whose first delivery is lost
	lost     map[uint64]bool
}

func (c *fakeConsumer) Reset(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resets++
	c.cseq = 0 // like nats-server: deliveries are numbered from 1 again
	return nil
}

func (c *fakeConsumer) Open() (Source, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &fakeIter{c: c, next: c.floor + 1}, nil
}

func (c *fakeConsumer) ack(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.floor {
		c.floor = seq
	}
}

type fakeIter struct {
	c       *fakeConsumer
	next    uint64
	stopped bool
	buf     []byte
	shift   int
	msg     inbox.Msg
}

// deliver returns a message whose fields are views into one buffer, which
// the next delivery first overwrites with garbage, as the real connection
// reuses its buffers: what the pipeline keeps without copying shows.
func (it *fakeIter) deliver(subject, reply string, data []byte) *inbox.Msg {
	for i := range it.buf {
		it.buf[i] = 'X'
	}
	// A shifting start, so an old view does not see the same bytes again.
	it.shift = (it.shift + 1) % 7
	n := it.shift + len(subject) + len(reply) + len(data)
	if cap(it.buf) < n {
		it.buf = make([]byte, 0, 2*n)
	}
	it.buf = append(append(append(append(it.buf[:0], "......."[:it.shift]...), subject...), reply...), data...)
	b := it.buf[it.shift:]
	it.msg = inbox.Msg{Subject: unsafe.String(&b[0], len(subject)), Reply: unsafe.String(&b[len(subject)], len(reply)),
		Data: b[len(subject)+len(reply):]}
	return &it.msg
}

func (it *fakeIter) Next(ctx context.Context) (*inbox.Msg, error) {
	c := it.c
	c.mu.Lock()
	if it.stopped {
		c.mu.Unlock()
		return nil, broker.ErrDeliveryEnded
	}
	for it.next <= uint64(len(c.payloads)) {
		seq := it.next
		it.next++
		c.cseq++
		if c.lose[seq] && !c.lost[seq] {
			c.lost[seq] = true // delivered into the void: the consumer sequence moves on
			continue
		}
		m := it.deliver("ioc.events.environment.kim-long.wl-kim-long",
			fmt.Sprintf("$JS.ACK.IOC_EVENTS.iocd.1.%d.%d.0.%d", seq, c.cseq, uint64(len(c.payloads))-seq), c.payloads[seq-1])
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return nil, context.DeadlineExceeded
	}
}

// Ack acks by the stream sequence in the reply subject, as the server does.
func (it *fakeIter) Ack(reply string) error {
	seq, _, _ := broker.AckSeqs(reply)
	it.c.ack(seq)
	return nil
}

func (it *fakeIter) Stop() { it.stopped = true }

type fakeSink struct {
	mu         sync.Mutex
	events     int
	windowKeys []string
}

func (s *fakeSink) InsertEvents(_ context.Context, rows *store.EventRows) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events += rows.Len()
	return nil
}
func (s *fakeSink) InsertTooLate(ctx context.Context, rows *store.EventRows) error {
	return s.InsertEvents(ctx, rows)
}
func (s *fakeSink) InsertRejected(context.Context, []store.Rejected) error { return nil }

func (s *fakeSink) InsertWindows(_ context.Context, rows []window.Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.windowKeys = append(s.windowKeys, r.Kind+"/"+r.Type+"/"+r.Metric+"/"+r.Area+"/"+r.Source)
	}
	return nil
}
func (s *fakeSink) InsertAlerts(context.Context, []alert.Alert) error { return nil }
func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// TestLostDeliveryIsNotAckedUnseen: when a delivery is lost, the pipeline
// must not let a cumulative ack cover it; it acks what it has, resets, and
// processes the lost message when it comes again.
func TestLostDeliveryIsNotAckedUnseen(t *testing.T) {
	// 20: mid-stream. 1: the very first delivery after a reset, as when an
	// older pull request still open on the server takes the redeliveries.
	for _, lose := range []uint64{20, 1} {
		t.Run(fmt.Sprintf("lose %d", lose), func(t *testing.T) { testLostDelivery(t, lose) })
	}
}

func testLostDelivery(t *testing.T, lose uint64) {
	const n = 50
	cons := &fakeConsumer{lose: map[uint64]bool{lose: true}, lost: map[uint64]bool{}}
	cons.payloads = kimLongPayloads(n)
	win, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: 2 * time.Minute,
		IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	p := New(Config{BatchSize: 8, FlushInterval: 50 * time.Millisecond, EarlyInterval: time.Second,
		MaxFutureSkew: 5 * time.Minute, ShutdownTimeout: 5 * time.Second}, win, sink, nil, Alerting{}, nil, metrics.New(), zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, cons) }()

	deadline := time.Now().Add(10 * time.Second)
	for sink.count() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := sink.count(); got != n {
		t.Fatalf("%d events written, want %d", got, n)
	}
	if !cons.lost[lose] {
		t.Fatal("the test did not lose a delivery")
	}
	if cons.resets != 2 {
		t.Fatalf("%d resets, want 2 (start-up and the gap)", cons.resets)
	}
	if cons.floor != n {
		t.Fatalf("ack floor %d, want %d", cons.floor, n)
	}
	// Each row's strings outlived the delivery buffers they came from.
	if len(sink.windowKeys) == 0 {
		t.Fatal("no window rows written")
	}
	for _, k := range sink.windowKeys {
		if k != "environment/water_level/height/kim-long/wl-kim-long" && k != "environment/water_level/events/kim-long/wl-kim-long" {
			t.Fatalf("window row of %q, want environment/water_level/{height,events}/kim-long/wl-kim-long", k)
		}
	}
}

// kimLongPayloads are n valid events of one source, a second apart, an
// hour ago.
func kimLongPayloads(n int) [][]byte {
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	out := make([][]byte, 0, n)
	for i := 1; i <= n; i++ {
		tm := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		out = append(out, []byte(fmt.Sprintf(
			`{"id":"e-%d","kind":"environment","type":"water_level","source":"wl-kim-long","area":"kim-long","time":%q,"metrics":{"height":1.5}}`, i, tm)))
	}
	return out
}
