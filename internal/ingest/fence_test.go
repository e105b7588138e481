package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/window"
)

// TestFenceStopsWritesAndAcks: once the fence fails (the partition's lease
// may belong to another process), the pipeline neither writes nor acks
// anything more, and Run reports the fence's error.
func TestFenceStopsWritesAndAcks(t *testing.T) {
	errLost := errors.New("lease lost")
	for _, tc := range []struct {
		name   string
		okFor  int64 // fence checks that pass before it fails
		wantLo int   // events written at least (what passed the fence)
	}{
		{"lost from the start", 0, 0},
		{"lost mid-stream", 6, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 40
			cons := &fakeConsumer{lose: map[uint64]bool{}, lost: map[uint64]bool{}}
			cons.payloads = kimLongPayloads(n)
			win, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: 2 * time.Minute,
				IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var checks atomic.Int64
			fence := func() error {
				if checks.Add(1) > tc.okFor {
					return errLost
				}
				return nil
			}
			sink := &fakeSink{}
			p := New(Config{BatchSize: 5, FlushInterval: 20 * time.Millisecond, EarlyInterval: time.Second,
				MaxFutureSkew: 5 * time.Minute, ShutdownTimeout: 2 * time.Second, Fence: fence},
				win, sink, nil, Alerting{}, nil, metrics.New(), zerolog.Nop())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, cons) }()
			time.Sleep(300 * time.Millisecond) // every message delivered, many batches sealed
			cancel()
			err = <-done
			if !errors.Is(err, errLost) {
				t.Fatalf("Run returned %v, want the fence's error", err)
			}
			written := sink.count()
			if written < tc.wantLo || written >= n {
				t.Fatalf("%d of %d events written; want at least %d and not all", written, n, tc.wantLo)
			}
			cons.mu.Lock()
			floor := cons.floor
			cons.mu.Unlock()
			if floor > uint64(written) {
				t.Fatalf("ack floor %d beyond the %d events written", floor, written)
			}
		})
	}
}
