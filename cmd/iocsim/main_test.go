package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/sim"
)

// syncBuffer collects log output written from several goroutines.
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

func startServer(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func noEnv(string) string { return "" }

func TestRunPublishesOnceStreamExists(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// iocd creates the stream; here it comes a little after iocsim starts.
	created := make(chan error, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
			Name:       eventsStream,
			Subjects:   []string{"ioc.events.>"},
			Duplicates: 2 * time.Minute,
		})
		created <- err
	}()

	const count = 3000
	start := "2026-11-22T08:00:00+07:00"
	var out syncBuffer
	rc := run([]string{
		"--nats", url, "--rate", "0", "--count", fmt.Sprint(count), "--start", start, "--seed", "5",
		"--dup-ratio", "0.2", "--bad-ratio", "0.1", "--late-ratio", "0.1", "--progress", "100ms",
	}, noEnv, &out)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if rc != exitOK {
		t.Fatalf("exit code %d\n%s", rc, out.String())
	}
	if !strings.Contains(out.String(), "waiting for iocd to create the stream") {
		t.Errorf("no log line while waiting for the stream:\n%s", out.String())
	}

	// JetStream drops the re-publications that carry Nats-Msg-Id; the rest
	// are stored.
	st, _ := time.Parse(time.RFC3339, start)
	g, err := sim.New(sim.Config{Seed: 5, Start: st, DupRatio: 0.2, BadRatio: 0.1, LateRatio: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(count)
	for range count {
		if m := g.Next(); m.Dup && m.MsgID != "" {
			want--
		}
	}
	stream, err := js.Stream(context.Background(), eventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != want {
		t.Fatalf("stream holds %d messages, want %d\n%s", info.State.Msgs, want, out.String())
	}
}

func TestRunPacesWithRate(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: eventsStream, Subjects: []string{"ioc.events.>"}}); err != nil {
		t.Fatal(err)
	}
	// 3600× makes the city produce ~30 000 events per wall second, so the
	// rate is what limits: about 500 in one second.
	var out syncBuffer
	began := time.Now()
	rc := run([]string{"--nats", url, "--rate", "500", "--speedup", "3600", "--duration", "1s", "--progress", "0"}, noEnv, &out)
	if rc != exitOK {
		t.Fatalf("exit code %d\n%s", rc, out.String())
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("took %v for a 1 s run", d)
	}
	stream, _ := js.Stream(context.Background(), eventsStream)
	info, _ := stream.Info(context.Background())
	if n := info.State.Msgs; n < 350 || n > 600 {
		t.Fatalf("published %d messages in 1 s at --rate 500", n)
	}
}

func TestRunFailsWithoutNATS(t *testing.T) {
	var out syncBuffer
	if rc := run([]string{"--nats", "nats://127.0.0.1:1", "--count", "1"}, noEnv, &out); rc != exitFailure {
		t.Fatalf("exit code %d, want %d", rc, exitFailure)
	}
	if !strings.Contains(out.String(), "cannot reach NATS") {
		t.Fatalf("unclear message: %s", out.String())
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr bool
		check   func(options) bool
	}{
		{"defaults", nil, nil, false, func(o options) bool {
			return o.natsURL == "nats://127.0.0.1:4222" && o.rate == 200 && o.speedup == 1 && o.seed == 1 &&
				o.scenario == "normal" && o.progress == 2*time.Second && o.logLevel == "info"
		}},
		{"env", nil, map[string]string{"IOC_NATS_URL": "nats://nats:4222", "IOC_LOG_LEVEL": "debug"}, false, func(o options) bool {
			return o.natsURL == "nats://nats:4222" && o.logLevel == "debug"
		}},
		{"flag beats env", []string{"--nats", "nats://x:1"}, map[string]string{"IOC_NATS_URL": "nats://nats:4222"}, false, func(o options) bool {
			return o.natsURL == "nats://x:1"
		}},
		{"negative rate", []string{"--rate", "-1"}, nil, true, nil},
		{"zero speedup", []string{"--speedup", "0"}, nil, true, nil},
		{"stray argument", []string{"flood"}, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			o, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(o) {
				t.Fatalf("unexpected options %+v", o)
			}
		})
	}
}

func TestDefaultStart(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 42, 0, time.UTC)
	tests := []struct {
		name string
		o    options
		want time.Time
	}{
		{"real time", options{rate: 200, speedup: 1}, now.Truncate(time.Minute)},
		{"speedup with duration", options{rate: 200, speedup: 60, duration: 10 * time.Minute}, now.Truncate(time.Minute).Add(-10 * time.Hour)},
		{"max speed with count", options{rate: 0, speedup: 1, count: 36000}, now.Truncate(time.Minute).Add(-time.Hour)},
		{"unbounded", options{rate: 0, speedup: 1}, now.Truncate(time.Minute).Add(-24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultStart(now, tt.o, 10, zerolog.Nop()); !got.Equal(tt.want) {
				t.Fatalf("defaultStart = %v, want %v", got, tt.want)
			}
		})
	}
}
