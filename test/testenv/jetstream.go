package testenv

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// JetStream runs an embedded JetStream server storing under dir until the
// test ends; a test restarts one on the same storage by calling it again
// with the same dir after shutting the first down.
func JetStream(tb testing.TB, dir string) *server.Server {
	tb.Helper()
	return NATSServer(tb, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true})
}

// NATSServer runs an embedded server with opts (copied) until the test
// ends: for a server without JetStream, or one restarted on the port of an
// earlier one.
func NATSServer(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	o := *opts
	srv, err := server.NewServer(&o)
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("NATS server not ready")
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}
