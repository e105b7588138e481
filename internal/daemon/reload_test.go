package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/metrics"
)

type setter struct {
	mu   sync.Mutex
	sets [][]alert.Rule
}

func (s *setter) SetRules(r []alert.Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets = append(s.sets, r)
}

func (s *setter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sets)
}

const oneRule = "rules:\n  - {name: a, kind: absence, match: {kind: environment}, after: 30m, severity: warning}\n"

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchRules: a file change and SIGHUP reload the rules; a broken
// file is refused, keeps the old rules and sets the metric to 0.
func TestWatchRules(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte(oneRule), 0o644); err != nil {
		t.Fatal(err)
	}
	_, data, err := loadRules(file)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.RulesReloadOK.Set(1)
	eng := &setter{}
	var logs strings.Builder
	var logMu sync.Mutex
	log := zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { watchRules(ctx, file, data, 20*time.Millisecond, eng, m, log); close(done) }()
	defer func() { cancel(); <-done }()

	// A broken edit: refused, with its line in the log.
	if err := os.WriteFile(file, []byte(oneRule+"  - {name: b, kind: threshold, window: 7s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken file to be refused", func() bool { return value(m.RulesReloadOK) == 0 })
	logMu.Lock()
	if !strings.Contains(logs.String(), file+":3:") {
		t.Errorf("the log does not name the broken line: %s", logs.String())
	}
	logMu.Unlock()
	if eng.count() != 0 {
		t.Fatal("a broken file replaced the rules")
	}

	// A good edit is picked up by polling.
	two := oneRule + "  - {name: b, kind: absence, match: {kind: camera}, after: 15m, severity: info}\n"
	if err := os.WriteFile(file, []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the good file to be loaded", func() bool { return eng.count() == 1 })
	if value(m.RulesReloadOK) != 1 || value(m.RulesLoaded) != 2 {
		t.Fatalf("metrics after reload: ok %v loaded %v", value(m.RulesReloadOK), value(m.RulesLoaded))
	}

	// SIGHUP reloads even an unchanged file.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP to reload", func() bool { return eng.count() == 2 })
	if got := value(m.RulesReloads.WithLabelValues("ok")); got != 2 {
		t.Fatalf("ioc_rules_reloads_total{result=ok} = %v", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
