package inbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/iocstream/iocstream/test/testenv"
)

func startServer(t *testing.T, opts *server.Options) (*server.Server, string) {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	srv := testenv.NATSServer(t, opts)
	return srv, srv.Addr().String()
}

func dial(t *testing.T, addr, subject string, o Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, subject, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func next(t *testing.T, c *Conn) *Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// payload i is deterministic, of sizes from 0 to past a block.
func payload(i int) []byte {
	size := (i * 7919) % 2000
	if i%500 == 250 {
		size = blockSize + 1000*i%blockSize // larger than a block
	}
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

// TestDeliversEveryMessageIntact: messages of every size, with and without
// headers and replies, arrive in order and intact while the reader fills
// blocks ahead of a consumer that pauses.
func TestDeliversEveryMessageIntact(t *testing.T) {
	_, addr := startServer(t, &server.Options{})
	c := dial(t, addr, "in.x", Options{Name: "test"})
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 3000
	go func() {
		for i := range n {
			m := &nats.Msg{Subject: "in.x", Data: payload(i)}
			if i%3 == 0 {
				m.Reply = fmt.Sprintf("reply.%d", i)
			}
			if i%2 == 0 {
				m.Header = nats.Header{"Nats-Msg-Id": []string{fmt.Sprint("id-", i)}}
			}
			if err := nc.PublishMsg(m); err != nil {
				t.Error(err)
				return
			}
		}
		_ = nc.Flush()
	}()
	for i := range n {
		if i == n/3 {
			time.Sleep(300 * time.Millisecond) // the reader runs ahead
		}
		m := next(t, c)
		if m.Subject != "in.x" || !bytes.Equal(m.Data, payload(i)) {
			t.Fatalf("message %d: subject %q, %d bytes, want in.x and payload %d (%d bytes)", i, m.Subject, len(m.Data), i, len(payload(i)))
		}
		if want := fmt.Sprintf("reply.%d", i); (i%3 == 0) != (m.Reply == want) || (i%3 != 0 && m.Reply != "") {
			t.Fatalf("message %d: reply %q", i, m.Reply)
		}
		if want := fmt.Sprint("id-", i); (i%2 == 0) != (HeaderValue(m.Header, "Nats-Msg-Id") == want) {
			t.Fatalf("message %d: header %q", i, m.Header)
		}
	}
}

// TestAnswersPingsWhileNotRead: a consumer busy elsewhere must not make the
// server drop the connection as stale.
func TestAnswersPingsWhileNotRead(t *testing.T) {
	_, addr := startServer(t, &server.Options{PingInterval: 30 * time.Millisecond, MaxPingsOut: 2})
	c := dial(t, addr, "in.x", Options{})
	time.Sleep(400 * time.Millisecond) // more than ten of the server's PINGs
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("in.x", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c); string(m.Data) != "still here" {
		t.Fatalf("got %q", m.Data)
	}
}

// TestSilentServerIsStale: a server that stops answering (a half-open
// connection) ends the connection after two PINGs.
func TestSilentServerIsStale(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("INFO {\"headers\":true}\r\n"))
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "PING\r\n" {
				_, _ = conn.Write([]byte("PONG\r\n"))
				break // the handshake's; later ones go unanswered
			}
		}
		_, _ = r.ReadString(0) // until the client gives up
	}()
	c := dial(t, ln.Addr().String(), "in.x", Options{PingInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Next(ctx); !errors.Is(err, ErrStale) {
		t.Fatalf("Next from a silent server: %v, want ErrStale", err)
	}
	_ = c.Close()
	wg.Wait()
}

func TestAuthentication(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	sign := func(kp nkeys.KeyPair) func([]byte) ([]byte, error) { return kp.Sign }
	for _, tc := range []struct {
		name      string
		server    server.Options
		good, bad Options
	}{
		{"user and password", server.Options{Username: "iocd", Password: "s3cret-pw"},
			Options{User: "iocd", Password: "s3cret-pw"}, Options{User: "iocd", Password: "wrong-pw"}},
		{"token", server.Options{Authorization: "tok-81ab"}, Options{Token: "tok-81ab"}, Options{Token: "tok-wrong"}},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
			Options{NKey: pub, Sign: sign(kp)}, Options{NKey: pub, Sign: sign(other)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, &tc.server)
			c := dial(t, addr, "in.x", tc.good)
			nc, err := nats.Connect("nats://"+addr, nats.UserInfo(tc.good.User, tc.good.Password), nats.Token(tc.good.Token),
				nats.Nkey(tc.good.NKey, tc.good.Sign))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := nc.Publish("in.x", []byte("authenticated")); err != nil {
				t.Fatal(err)
			}
			if m := next(t, c); string(m.Data) != "authenticated" {
				t.Fatalf("got %q", m.Data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = Dial(ctx, addr, "in.x", tc.bad)
			if err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
				t.Fatalf("bad credentials: %v, want the server's Authorization Violation", err)
			}
			if tc.bad.Password != "" && strings.Contains(err.Error(), tc.bad.Password) || tc.bad.Token != "" && strings.Contains(err.Error(), tc.bad.Token) {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestPermissions: a refused subscription fails Dial; a refused publish is
// reported and the connection stays.
func TestPermissions(t *testing.T) {
	perms := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"in.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"in.>"}},
	}
	_, addr := startServer(t, &server.Options{Users: []*server.User{{Username: "u", Password: "p", Permissions: perms}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, addr, "elsewhere.x", Options{User: "u", Password: "p"}); err == nil || !strings.Contains(err.Error(), "Permissions Violation") {
		t.Fatalf("a subscription the user may not make: %v, want a permissions violation", err)
	}
	errs := make(chan error, 4)
	c := dial(t, addr, "in.x", Options{User: "u", Password: "p", OnError: func(err error) { errs <- err }})
	if err := c.Publish("no.x", "", []byte("refused")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Fatalf("OnError got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported for a refused publish")
	}
	// Still open: an allowed publish comes back to the subscription.
	if err := c.Publish("in.x", "", []byte("allowed")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c); string(m.Data) != "allowed" {
		t.Fatalf("got %q", m.Data)
	}
}

// TestPublishAndReply: a request published on the connection is answered
// on its subscription (the pull request's path).
func TestPublishAndReply(t *testing.T) {
	_, addr := startServer(t, &server.Options{})
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("svc", func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, "_INBOX.me", Options{})
	for i := range 100 {
		if err := c.Publish("svc", "_INBOX.me", fmt.Appendf(nil, "q%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if m := next(t, c); string(m.Data) != fmt.Sprintf("re: q%d", i) {
			t.Fatalf("answer %d: %q", i, m.Data)
		}
	}
}

func TestCloseAndServerShutdown(t *testing.T) {
	srv, addr := startServer(t, &server.Options{})
	c := dial(t, addr, "in.x", Options{})
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Next(ctx); err == nil || errors.Is(err, ctx.Err()) || errors.Is(err, ErrClosed) {
		t.Fatalf("Next after the server went away: %v, want the connection's error", err)
	}
	_, addr = startServer(t, &server.Options{})
	c = dial(t, addr, "in.x", Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	if err := c.Publish("x", "", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}
