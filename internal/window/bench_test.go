package window_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/internal/window"
)

// The pipeline's defaults: a batch is sealed (Collect without early rows)
// every 50 000 events, and early rows are written every 5 s, which at
// 100 000 events/s is every 500 000 events.
const (
	collectEvery = 50_000
	earlyEvery   = 500_000
	// chunk is how many events are generated ahead, outside the timer.
	chunk = 1 << 16
	// processingRate is the events per second of processing time the
	// benchmark pretends to run at (the nowMs passed to Add and Collect).
	processingRate = 100_000
)

// eventSource generates decoded events of the simulated city in chunks:
// times advance, ids never repeat, 112 sources report at their own periods.
type eventSource struct {
	gen    *sim.Generator
	dec    *event.Decoder
	nowMs  int64
	events []event.Event
	next   int
}

func newEventSource(b *testing.B, lateRatio float64) *eventSource {
	b.Helper()
	start := time.Date(2026, 11, 22, 17, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	g, err := sim.New(sim.Config{Seed: 1, Start: start, LateRatio: lateRatio})
	if err != nil {
		b.Fatal(err)
	}
	// A decoder clock far ahead: the simulated clock runs at ≈ 9 events per
	// simulated second, so a long benchmark covers weeks of event time.
	return &eventSource{gen: g, dec: event.NewDecoder(1 << 62), nowMs: start.Add(24 * 365 * time.Hour).UnixMilli(),
		events: make([]event.Event, chunk), next: chunk}
}

// fill decodes the next chunk of messages into events.
func (s *eventSource) fill(b *testing.B) {
	for i := range s.events {
		m := s.gen.Next()
		s.events[i] = event.Event{}
		if rej := s.dec.Decode(m.Subject, m.Data, s.nowMs, &s.events[i]); rej != nil {
			b.Fatalf("simulated event rejected: %v\n%s", rej, m.Data)
		}
	}
	s.next = 0
}

// BenchmarkAdd adds simulated events to 1-minute windows, one event per op,
// including the Collect calls the pipeline makes so that state stays
// bounded (windows are finalised by the watermark and forgotten after the
// 1 h correction horizon).
func BenchmarkAdd(b *testing.B) {
	for _, bc := range []struct {
		name string
		late float64
	}{{"in-order", 0}, {"late-2pct", 0.02}} {
		b.Run(bc.name, func(b *testing.B) {
			set, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: 2 * time.Minute,
				IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			src := newEventSource(b, bc.late)
			procStart := time.Now().UnixMilli()
			var rows []window.Row
			var nRows, n int
			b.ReportAllocs()
			for b.Loop() {
				if src.next == len(src.events) {
					b.StopTimer()
					src.fill(b)
					b.StartTimer()
				}
				nowMs := procStart + int64(n)*1000/processingRate
				set.Add(&src.events[src.next], nowMs)
				src.next++
				n++
				if n%collectEvery == 0 {
					rows = set.Collect(rows[:0], nowMs, n%earlyEvery == 0)
					nRows += len(rows)
				}
			}
			b.ReportMetric(float64(set.Stats().Sources), "sources")
			b.ReportMetric(float64(nRows)/float64(n), "rows/event")
		})
	}
}

// BenchmarkCityState fills the windows with an hour and a quarter of a
// city of 2 000 cameras (the default 1 h correction horizon holds an hour
// of it) and reports the live heap the Set keeps per event inside the
// horizon: the figure that decides iocd's memory at city scale.
func BenchmarkCityState(b *testing.B) {
	start := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	for b.Loop() {
		b.StopTimer()
		g, err := sim.New(sim.Config{Seed: 1, Start: start, ExtraCameras: 2000 - 40})
		if err != nil {
			b.Fatal(err)
		}
		dec := event.NewDecoder(1 << 62)
		set, err := window.New(window.Config{Sizes: []time.Duration{time.Minute}, AllowedLateness: 2 * time.Minute,
			IdleTimeout: time.Minute, CorrectionHorizon: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		end := start.Add(75 * time.Minute)
		horizon := end.Add(-time.Hour)
		var rows []window.Row
		var updates []window.Update
		var n, inHorizon int
		var ev event.Event
		for g.NextTime().Before(end) {
			m := g.Next()
			ev = event.Event{}
			if rej := dec.Decode(m.Subject, m.Data, end.Add(time.Hour).UnixMilli(), &ev); rej != nil {
				b.Fatalf("simulated event rejected: %v", rej)
			}
			set.Add(&ev, ev.TimeMs)
			if n++; n%collectEvery == 0 {
				// As the pipeline does: the alert engine takes the log.
				rows = set.Collect(rows[:0], ev.TimeMs, false)
				updates = set.TakeUpdates(updates[:0])
			}
			if ev.TimeMs >= horizon.UnixMilli() {
				inHorizon++
			}
		}
		set.Collect(nil, end.UnixMilli(), false)
		set.TakeUpdates(nil)
		rows, updates = nil, nil
		b.StopTimer()
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		if path := os.Getenv("IOC_BENCH_HEAP"); path != "" {
			writeHeap(b, path)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(inHorizon), "live-B/event")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "live-MB")
		b.ReportMetric(float64(set.Stats().Sources), "sources")
		runtime.KeepAlive(set)
		b.StartTimer()
	}
}

// writeHeap writes a heap profile of what is live now to path
// (IOC_BENCH_HEAP): where the window state's bytes are.
func writeHeap(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
