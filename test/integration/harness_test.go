//go:build integration

// Package integration runs iocd as a process against a real nats-server
// process and a real ClickHouse server, and compares what lands in
// ClickHouse with a ground truth computed here from what was published.
// `make test` builds the binaries and starts ClickHouse; run by hand with
//
//	IOC_TEST_IOCD_BIN=bin/iocd IOC_TEST_NATS_SERVER_BIN=bin/nats-server \
//	  go test -tags integration ./test/integration/
package integration

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/test/testenv"
)

// natsServer is a nats-server process with JetStream on a fixed port and
// store, so it can be stopped and started again.
type natsServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	env  []string // extra environment (passwords a config file refers to)
	args []string // extra arguments, e.g. -c FILE
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	return startNATSWith(t, nil)
}

// startNATSWith starts nats-server with extra environment and arguments.
func startNATSWith(t *testing.T, env []string, args ...string) *natsServer {
	t.Helper()
	s := &natsServer{t: t, bin: testenv.Bin(t, "IOC_TEST_NATS_SERVER_BIN", "github.com/nats-io/nats-server/v2"),
		port: testenv.FreePort(t), dir: t.TempDir(), env: env, args: args}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) start() {
	s.t.Helper()
	logf, _ := os.OpenFile(filepath.Join(s.dir, "nats.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	s.cmd = exec.Command(s.bin, append(s.args, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-sd", filepath.Join(s.dir, "store"))...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("nats-server did not listen on %d", s.port)
}

func (s *natsServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// iocd is one iocd process.
type iocd struct {
	t    *testing.T
	bin  string
	env  []string
	cmd  *exec.Cmd
	logs string
	done chan error
	http string
}

func newIOCD(t *testing.T, natsURL, database string, extra ...string) *iocd {
	t.Helper()
	port := testenv.FreePort(t)
	p := &iocd{t: t, bin: testenv.Bin(t, "IOC_TEST_IOCD_BIN", "./cmd/iocd"), http: fmt.Sprintf("127.0.0.1:%d", port),
		logs: filepath.Join(t.TempDir(), "iocd.log")}
	p.env = append(os.Environ(),
		"IOC_NATS_URL="+natsURL,
		"IOC_CLICKHOUSE_ADDR="+testenv.ClickHouseAddr(),
		"IOC_CLICKHOUSE_DATABASE="+database,
		"IOC_HTTP_ADDR="+p.http,
		"IOC_DATA_DIR="+t.TempDir(),
		"IOC_IDLE_TIMEOUT=3s",
		"IOC_EARLY_INTERVAL=1s",
		"IOC_FLUSH_INTERVAL=300ms",
		"IOC_BATCH_SIZE=2000",
		"IOC_MAX_ACK_PENDING=20000",
		"IOC_ACK_WAIT=5s",
		"IOC_LOG_LEVEL=info",
		"IOC_RULES="+filepath.Join(testenv.RepoRoot(t), "deployments", "rules", "hue.yaml"),
	)
	p.env = append(p.env, extra...)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logs)
			lines := strings.Split(string(b), "\n")
			t.Logf("iocd log tail:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return p
}

func (p *iocd) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "run")
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start iocd: %v", err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait(); logf.Close() }(p.cmd, p.done)
}

func (p *iocd) kill() {
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
	}
}

// terminate sends SIGTERM and returns the exit error and how long it took.
func (p *iocd) terminate(timeout time.Duration) (error, time.Duration) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd = nil
		return err, time.Since(start)
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("iocd did not exit within %s of SIGTERM", timeout), time.Since(start)
	}
}

// testDB returns a fresh database name and a connection to ClickHouse; the
// database is dropped after a passing test and kept after a failing one.
func testDB(t *testing.T) (string, driver.Conn) {
	t.Helper()
	return testDBAt(t, testenv.ClickHouseAddr())
}

// testDBAt is testDB on the ClickHouse server at addr.
func testDBAt(t *testing.T, addr string) (string, driver.Conn) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatalf("ClickHouse at %s is not reachable (make test starts it): %v", addr, err)
	}
	name := fmt.Sprintf("ioc_it_%d_%d", time.Now().Unix(), rand.Intn(1_000_000))
	t.Cleanup(func() {
		if !t.Failed() {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		} else {
			t.Logf("kept database %s for inspection", name)
		}
		conn.Close()
	})
	return name, conn
}

func connectJS(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	testenv.WaitFor(tb, timeout, 250*time.Millisecond, what, cond)
}
