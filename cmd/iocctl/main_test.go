package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/httpapi"
)

// syncBuffer is written by the watcher and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func kimLong(seq int, sev alert.Severity, status alert.Status) alert.Alert {
	return alert.Alert{ID: "a1", Seq: seq, Fingerprint: "fp1", Rule: "river_level_kim_long", Status: status, Severity: sev,
		Kind: "environment", Area: "kim-long", Source: "wl-kim-long", UpdatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Summary: "Mực nước sông Hương tại Kim Long 2.13 m ≥ báo động 2 (2 m)"}
}

// serveAPI serves iocd's real HTTP API over alerts until the test ends and
// returns the --api flag that reaches it.
func serveAPI(t *testing.T, alerts httpapi.Alerts, tokens []string) string {
	t.Helper()
	srv, err := httpapi.New("127.0.0.1:0", prometheus.NewRegistry(), nil, alerts, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv.RequireTokens(tokens, true)
	go srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "--api=http://" + srv.Addr()
}

// TestAlertsAgainstIOCDsAPI runs both subcommands against the real HTTP
// API of iocd serving a live board.
func TestAlertsAgainstIOCDsAPI(t *testing.T) {
	board := alert.NewBoard()
	board.Apply(kimLong(1, alert.Info, alert.StatusFiring))
	api := serveAPI(t, board, nil)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{api, "alerts"}, &out, &errOut); code != 0 {
		t.Fatalf("alerts: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "1 alert(s) firing") || !strings.Contains(out.String(), "INFO") ||
		!strings.Contains(out.String(), "river_level_kim_long") {
		t.Fatalf("alerts printed:\n%s", out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var watched syncBuffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{api, "alerts", "watch"}, &watched, &errOut) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(watched.String(), "1 alert(s) firing") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	board.Apply(kimLong(2, alert.Warning, alert.StatusFiring))
	board.Apply(kimLong(3, alert.Warning, alert.StatusResolved))
	for !strings.Contains(watched.String(), "RESOLVED") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(watched.String()), "\n")
	want := []string{"1 alert(s) firing", "INFO     FIRING", "WARNING  CHANGED", "WARNING  RESOLVED"}
	if len(lines) != len(want) {
		t.Fatalf("watch printed %d lines, want %d:\n%s", len(lines), len(want), watched.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q lacks %q", i, lines[i], w)
		}
	}
}

type ackingBoard struct {
	*alert.Board
	got chan string
}

func (b ackingBoard) Act(fp string, a alert.Action) {
	if a.Kind == alert.ActionAck {
		b.got <- fp + "|" + a.Actor + "|" + a.Comment
		return
	}
	b.got <- string(a.Kind) + " " + fp + "|" + a.Actor + "|" + a.To + "|" + a.Comment
}

func TestAck(t *testing.T) {
	b := ackingBoard{alert.NewBoard(), make(chan string, 1)}
	b.Apply(kimLong(1, alert.Info, alert.StatusFiring))
	api := serveAPI(t, b, nil)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{api, "--by", "Lan", "alerts", "ack", "fp1", "đã cử đội"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := <-b.got; got != "fp1|Lan|đã cử đội" {
		t.Fatalf("acknowledged %q", got)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"alerts", "unack", "fp1"}, "unack fp1|Lan||"},
		{[]string{"alerts", "assign", "fp1", "pccc-hue", "gấp"}, "assign fp1|Lan|pccc-hue|gấp"},
		{[]string{"alerts", "assign", "fp1", ""}, "assign fp1|Lan||"},
		{[]string{"alerts", "comment", "fp1", "<b>xe đã tới</b>"}, "comment fp1|Lan||<b>xe đã tới</b>"},
	} {
		if code := run(context.Background(), append([]string{api, "--by", "Lan"}, tt.args...), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut.String())
		}
		if got := <-b.got; got != tt.want {
			t.Fatalf("%v: passed on %q, want %q", tt.args, got, tt.want)
		}
	}
	errOut.Reset()
	if code := run(context.Background(), []string{api, "--by", "Lan", "alerts", "ack", "nope"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "404") || !strings.Contains(errOut.String(), "no firing alert") {
		t.Fatalf("unknown fingerprint: exit %d, %s", code, errOut.String())
	}
}

func TestToken(t *testing.T) {
	board := alert.NewBoard()
	api := serveAPI(t, board, []string{"s3cret-token"})
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{api, "alerts"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--token") {
		t.Fatalf("without a token: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{api, "--token", "s3cret-token", "alerts"}, &out, &errOut); code != 0 {
		t.Fatalf("with the token: exit %d, %s", code, errOut.String())
	}
}
