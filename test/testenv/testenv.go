// Package testenv holds what the integration tests and the end-to-end
// benchmarks share to run the real binaries: finding or building them,
// free ports, and the ClickHouse address.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Bin returns the binary named by the environment variable env (absolute, or
// relative to the repository root or the working directory), or builds the
// Go package pkg into a temporary directory.
func Bin(tb testing.TB, env, pkg string) string {
	tb.Helper()
	if p := os.Getenv(env); p != "" {
		if !filepath.IsAbs(p) {
			if _, err := os.Stat(p); err != nil {
				p = filepath.Join(RepoRoot(tb), p)
			}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := os.Stat(abs); err != nil {
			tb.Fatalf("%s: %v", env, err)
		}
		return abs
	}
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot(tb)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ClickHouseAddr is IOC_CLICKHOUSE_ADDR or the local default.
func ClickHouseAddr() string {
	if a := os.Getenv("IOC_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// WaitFor polls cond every interval until it returns true, or fails the
// test after timeout with the last state cond described.
func WaitFor(tb testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(interval)
	}
	tb.Fatalf("timed out after %s waiting for %s (last state: %s)", timeout, what, last)
}

// Alertmanager is the path of Debian's Alertmanager (the package names it
// prometheus-alertmanager; upstream builds name it alertmanager).
func Alertmanager(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	tb.Fatal("Alertmanager is not installed: make monitoring-tools installs Debian's prometheus-alertmanager")
	return ""
}
