package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/inbox"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/test/testenv"
)

// pullConsumer makes a durable AckAll consumer on IOC_EVENTS, as iocd's.
func pullConsumer(t *testing.T, js jetstream.JetStream, name string) *Consumer {
	t.Helper()
	c, err := EnsureConsumer(testCtx(t), js, ConsumerSettings{Durable: name, MaxAckPending: 10_000,
		AckWait: 30 * time.Second, Prefetch: 100}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publishN(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := js.Publish(testCtx(t), "ioc.events.camera.kim-long.cam1", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// next waits for one delivery the way the pipeline does: short waits, each
// ending with a deadline, for at most total.
func next(t *testing.T, p *Pull, total time.Duration) *nats.Msg {
	t.Helper()
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		msg, err := p.Next(ctx)
		cancel()
		if err == nil {
			return copyMsg(msg)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next: %v", err)
		}
	}
	t.Fatalf("no delivery in %v", total)
	return nil
}

// copyMsg keeps a delivery past the next call to Next.
func copyMsg(m *inbox.Msg) *nats.Msg {
	return &nats.Msg{Subject: strings.Clone(m.Subject), Reply: strings.Clone(m.Reply), Data: bytes.Clone(m.Data)}
}

// expectRun reads n deliveries whose payloads are from, from+1, … and whose
// consumer sequences follow cseq.
func expectRun(t *testing.T, p *Pull, from, n int, cseq uint64) *nats.Msg {
	t.Helper()
	var last *nats.Msg
	for i := from; i < from+n; i++ {
		last = next(t, p, 5*time.Second)
		_, got, _ := AckSeqs(last.Reply)
		cseq++
		if string(last.Data) != fmt.Sprint(i) || got != cseq {
			t.Fatalf("delivery %q with consumer seq %d, want %d with %d", last.Data, got, i, cseq)
		}
	}
	return last
}

func waitFloor(t *testing.T, c *Consumer, want uint64) {
	t.Helper()
	var floor uint64
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if floor, err = c.AckFloor(testCtx(t)); err == nil && floor == want {
			return
		}
	}
	t.Fatalf("ack floor %d (%v), want %d", floor, err, want)
}

// TestPullDeliversInOrder: more messages than a batch arrive in order, with
// new requests as the first ones fill, and one ack covers all.
func TestPullDeliversInOrder(t *testing.T) {
	_, js := startEvents(t, 0)
	c := pullConsumer(t, js, "iocd")
	publishN(t, js, 1, 450)
	p, err := c.Pull()
	if err != nil {
		t.Fatal(err)
	}
	last := expectRun(t, p, 1, 450, 0)
	if p.asked > p.batch {
		t.Fatalf("%d messages asked for, more than a batch of %d", p.asked, p.batch)
	}
	p.Stop()
	if err := p.Ack(last.Reply); err != nil { // after Stop, as a drain does
		t.Fatal(err)
	}
	waitFloor(t, c, 450)
}

// TestPullRenewsExpiredRequests: requests expire on the server while
// nothing is published; a message published later still comes, and the
// requests do not pile up.
func TestPullRenewsExpiredRequests(t *testing.T) {
	_, js := startEvents(t, 0)
	c := pullConsumer(t, js, "iocd")
	p, err := newPull(js.Conn(), EventsStream, "iocd", 10, 200*time.Millisecond, 50*time.Millisecond, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if msg, err := p.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next on an empty stream: %v, %v", msg, err)
		}
		cancel()
	}
	if info, err := c.cons.Info(testCtx(t)); err != nil || info.NumWaiting > 2 {
		t.Fatalf("%v pull requests waiting (%v), want at most 2", info.NumWaiting, err)
	}
	publishN(t, js, 1, 25)
	expectRun(t, p, 1, 25, 0)
}

// TestPullAfterServerRestart: the server's requests die with it; after the
// reconnect new ones are made and delivery goes on where it was.
func TestPullAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	srv := testenv.NATSServer(t, opts)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(testCtx(t), js, testLimits, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	c := pullConsumer(t, js, "iocd")
	publishN(t, js, 1, 10)
	p, err := c.Pull()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.Ack(expectRun(t, p, 1, 10, 0).Reply); err != nil {
		t.Fatal(err)
	}
	waitFloor(t, c, 10)

	opts.Port = srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.NATSServer(t, opts)
	publishN(t, js, 11, 10)
	expectRun(t, p, 11, 10, 10)
}

// TestPullEndsWhenConsumerDeleted: the pipeline must stop (and start-up
// recreate the consumer) rather than wait for ever.
func TestPullEndsWhenConsumerDeleted(t *testing.T) {
	_, js := startEvents(t, 0)
	pullConsumer(t, js, "iocd")
	p, err := newPull(js.Conn(), EventsStream, "iocd", 10, 10*time.Second, time.Second, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = p.Next(ctx) // the request is made and waits on the server
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
	if err := js.DeleteConsumer(testCtx(t), EventsStream, "iocd"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Next(ctx); !errors.Is(err, ErrDeliveryEnded) {
		t.Fatalf("Next after the consumer was deleted: %v, want ErrDeliveryEnded", err)
	}
}

// TestPullAsksAgainWhenTheServerIsSilent: requests lost without a status
// (a server killed, a reconnect) would leave the pull waiting for ever;
// with no heartbeat for two intervals, or after its delivery connection
// came back, it asks again.
func TestPullAsksAgainWhenTheServerIsSilent(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	srv := testenv.NATSServer(t, opts)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A JetStream that takes the requests and never answers.
	requests, err := nc.SubscribeSync("$JS.API.CONSUMER.MSG.NEXT.IOC_EVENTS.iocd")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n, _, err := requests.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// waitFor calls Next as the pipeline does until want requests were
	// made, or d has passed.
	waitFor := func(p *Pull, want int, d time.Duration) int {
		for end := time.Now().Add(d); time.Now().Before(end) && count() < want; {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			if _, err := p.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Next: %v", err)
			}
			cancel()
		}
		return count()
	}

	// Silence: a heartbeat every 100 ms is due, none comes.
	p, err := newPull(nc, EventsStream, "iocd", 10, time.Second, 100*time.Millisecond, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n := waitFor(p, 2, 150*time.Millisecond); n != 1 {
		t.Fatalf("%d requests before two heartbeat intervals, want 1", n)
	}
	if n := waitFor(p, 2, 5*time.Second); n != 2 {
		t.Fatalf("%d requests after %v of silence, want 2", n, time.Since(start))
	}
	p.Stop()

	// A reconnect, with heartbeats too far apart to matter here.
	p, err = newPull(nc, EventsStream, "iocd", 10, time.Minute, 30*time.Second, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if n := waitFor(p, 3, time.Second); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	opts.Port = srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.NATSServer(t, opts)
	// The stand-in JetStream's subscription must be back first: the pull
	// redials only once nats.go has reconnected, but a request could
	// otherwise still beat that subscription to the new server.
	testenv.WaitFor(t, 5*time.Second, 20*time.Millisecond, "nats.go reconnected", func() (bool, string) {
		err := nc.FlushTimeout(100 * time.Millisecond)
		return err == nil, fmt.Sprint(err)
	})
	if n := waitFor(p, 4, 5*time.Second); n != 4 {
		t.Fatalf("%d requests after the reconnect, want 4", n)
	}
}
