package event_test

import (
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/sim"
)

// benchMessages is how many simulated messages a benchmark cycles through:
// enough to mix every kind, type and source, few enough to stay in cache
// the way a batch of recent deliveries would.
const benchMessages = 4096

// benchStart is the simulated start; benchNow is after every generated
// event time, as when iocd drains a backlog.
var (
	benchStart = time.Date(2026, 11, 22, 17, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	benchNow   = benchStart.Add(48 * time.Hour)
)

// maxFuture is iocd's default IOC_MAX_FUTURE_SKEW (5 min).
const maxFuture = 5 * 60 * 1000

// simMessages returns n messages of the simulated city.
func simMessages(b *testing.B, n int, badRatio float64) []sim.Message {
	b.Helper()
	g, err := sim.New(sim.Config{Seed: 1, Start: benchStart, BadRatio: badRatio,
		Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]sim.Message, n)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	return msgs
}

func avgSize(msgs []sim.Message) int64 {
	var n int
	for _, m := range msgs {
		n += len(m.Data)
	}
	return int64(n / len(msgs))
}

// BenchmarkDecode decodes valid events of the simulated city (≈ 300-byte
// payloads), one Decode per op.
func BenchmarkDecode(b *testing.B) {
	msgs := simMessages(b, benchMessages, 0)
	nowMs := benchNow.UnixMilli()
	check := event.NewDecoder(maxFuture)
	for i, m := range msgs {
		var ev event.Event
		if rej := check.Decode(m.Subject, m.Data, nowMs, &ev); rej != nil {
			b.Fatalf("message %d rejected: %v\n%s", i, rej, m.Data)
		}
	}

	// reuse: one Event for every call, the decoder's documented best case.
	b.Run("reuse", func(b *testing.B) {
		d := event.NewDecoder(maxFuture)
		var ev event.Event
		b.SetBytes(avgSize(msgs))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			if rej := d.Decode(m.Subject, m.Data, nowMs, &ev); rej != nil {
				b.Fatal(rej)
			}
			i++
		}
	})

	// fresh: a new Event per message, as ingest.Pipeline.handle does
	// (the batch keeps each event's slices until it is written).
	b.Run("fresh", func(b *testing.B) {
		d := event.NewDecoder(maxFuture)
		b.SetBytes(avgSize(msgs))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			ev := &event.Event{}
			if rej := d.Decode(m.Subject, m.Data, nowMs, ev); rej != nil {
				b.Fatal(rej)
			}
			i++
		}
	})
}

// BenchmarkDecodeRejected decodes invalid payloads spread over every
// rejection reason (the simulator's BadRatio 1), one Decode per op.
func BenchmarkDecodeRejected(b *testing.B) {
	msgs := simMessages(b, benchMessages, 1)
	nowMs := benchNow.UnixMilli()
	d := event.NewDecoder(maxFuture)
	var ev event.Event
	for i, m := range msgs {
		if rej := d.Decode(m.Subject, m.Data, nowMs, &ev); rej == nil || string(rej.Reason) != m.Reason {
			b.Fatalf("message %d: got %v, want %s\n%s", i, rej, m.Reason, m.Data)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := &msgs[i%len(msgs)]
		if d.Decode(m.Subject, m.Data, nowMs, &ev) == nil {
			b.Fatal("accepted an invalid payload")
		}
		i++
	}
}
