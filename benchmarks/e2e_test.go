//go:build integration

package benchmarks

// End-to-end throughput of iocd: JetStream in, ClickHouse out, measured
// from outside the processes. Build the binaries and run with
//
//	make build nats-server clickhouse
//	IOC_TEST_IOCD_BIN=bin/iocd IOC_TEST_NATS_SERVER_BIN=bin/nats-server IOC_TEST_IOCSIM_BIN=bin/iocsim \
//	  go test -tags integration -run '^$' -bench E2E -benchtime 1x -timeout 30m ./benchmarks/
//
// IOC_BENCH_EVENTS sets the number of events (default 1 000 000).
// IOC_BENCH_PPROF=<dir> starts iocd with IOC_PPROF=true and saves a Go CPU
// profile of its first IOC_BENCH_PPROF_SECONDS (default 8) in each run;
// IOC_BENCH_PERF=<dir> records a perf(1) profile of iocd instead.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/test/testenv"
)

// maxInFlight is the async publish window, as in iocsim.
const maxInFlight = 4000

func benchEvents(b *testing.B) int {
	b.Helper()
	s := os.Getenv("IOC_BENCH_EVENTS")
	if s == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("IOC_BENCH_EVENTS=%q is not a positive whole number", s)
	}
	return n
}

// BenchmarkE2E measures how fast iocd moves events from IOC_EVENTS into
// ClickHouse, with its default settings (batches of 50 000, 1-minute
// windows):
//
//   - backlog: the events are in the stream before iocd starts; the clock
//     runs from iocd's start until the consumer has acknowledged the last
//     one and the events table holds every accepted event.
//   - backlog-bad1pct: the same with 1 % invalid messages, which iocd
//     writes to the rejected table and dead-letters to IOC_DLQ.
//   - live: iocd runs first and iocsim --rate 0 publishes while it
//     consumes; the clock runs from iocsim's start.
//
// Besides events/s it reports iocd's peak RSS and the CPU time per event of
// iocd, the NATS server, ClickHouse (when local) and iocsim.
func BenchmarkE2E(b *testing.B) {
	n := benchEvents(b)
	b.Run("backlog", func(b *testing.B) { benchBacklog(b, n, 0) })
	b.Run("backlog-sse20", func(b *testing.B) { benchBacklogWith(b, n, backlogExtras{streams: sseClients}) })
	b.Run("backlog-alertmanager", func(b *testing.B) { benchBacklogWith(b, n, backlogExtras{alertmanager: true}) })
	b.Run("backlog-bad1pct", func(b *testing.B) { benchBacklog(b, n, 0.01) })
	b.Run("backlog-city500", func(b *testing.B) {
		benchBacklogWith(b, n, backlogExtras{badRatio: 0.01, extraCameras: cityCameras})
	})
	b.Run("live", func(b *testing.B) { benchLive(b, n) })
}

// BenchmarkCityScale drains a city-wide camera network's backlog: 10 000
// cameras every 5 s (about 2 050 events/s of event time with the other
// sources) for two simulated hours, about 14.8 M events, with the default
// 1 h correction horizon, so iocd holds the dedup ids of 7.4 M events at
// once. Its figure is iocd's peak RSS (the target is 1 GB); the rows are
// checked exact as in every backlog run. IOC_BENCH_CITY_HOURS changes the
// simulated span. iocd runs as a city would run it on a 1 GB budget, with
// IOC_MEMORY_LIMIT_MB=900 (Go's soft limit) unless the caller sets another
// (0: none, the GC's default target of twice the live heap).
func BenchmarkCityScale(b *testing.B) {
	if _, set := os.LookupEnv("IOC_MEMORY_LIMIT_MB"); !set {
		b.Setenv("IOC_MEMORY_LIMIT_MB", "900")
	}
	b.Logf("IOC_MEMORY_LIMIT_MB=%s", os.Getenv("IOC_MEMORY_LIMIT_MB"))
	hours := 2.0
	if s := os.Getenv("IOC_BENCH_CITY_HOURS"); s != "" {
		var err error
		if hours, err = strconv.ParseFloat(s, 64); err != nil || hours <= 0 {
			b.Fatalf("IOC_BENCH_CITY_HOURS=%q is not a positive number of hours", s)
		}
	}
	x := backlogExtras{extraCameras: 10_000 - 40}
	probe, err := sim.New(sim.Config{Seed: 1, Start: time.Now(), ExtraCameras: x.extraCameras})
	if err != nil {
		b.Fatal(err)
	}
	n := int(probe.NominalRate() * hours * 3600)
	b.Logf("%.0f events/s of event time for %g simulated hours: %d events", probe.NominalRate(), hours, n)
	benchBacklogWith(b, n, x)
}

func benchBacklog(b *testing.B, n int, badRatio float64) {
	benchBacklogWith(b, n, backlogExtras{badRatio: badRatio})
}

// sseClients is how many consoles backlog-sse20 keeps on the alert
// stream: the console and API must add nothing to the hot path.
const sseClients = 20

// cityCameras is the cameras backlog-city500 adds to the simulated
// city's 73 sources: 523 sources over the 40 units (a camera's person
// counter shares its source id).
const cityCameras = 450

// backlogExtras is what a backlog variant adds to the plain run.
type backlogExtras struct {
	badRatio     float64
	extraCameras int // more sources than the simulated city's 73
	streams      int // SSE clients on the alert stream
	// alertmanager sends the alerts to a real Alertmanager (Debian's),
	// re-sending every second: the bridge must add nothing to the hot path.
	alertmanager bool
}

func benchBacklogWith(b *testing.B, n int, x backlogExtras) {
	var ms measurements
	for range b.N {
		b.StopTimer()
		ms = append(ms, runBacklog(b, n, x))
	}
	ms.report(b)
}

func runBacklog(b *testing.B, n int, x backlogExtras) measurement {
	r := newRig(b)
	defer r.close()
	r.createStreams()
	accepted, pubRate := r.preload(n, sim.Config{BadRatio: x.badRatio, ExtraCameras: x.extraCameras})
	raw, rawNats := r.rawDrain(n)
	var env []string
	if x.alertmanager {
		env = append(env, "IOC_ALERTMANAGER_URL="+r.startAlertmanager(), "IOC_ALERTMANAGER_RESEND=1s")
	}

	before := r.sampleCPU(nil)
	b.StartTimer()
	start := time.Now()
	iocd, httpAddr := r.startIOCD(env...)
	if x.streams > 0 {
		defer followAlerts(b, httpAddr, x.streams)()
	}
	name := profileName(b)
	stopPerf := perfRecord(b, iocd.pid(), name)
	waitProfile := pprofCapture(b, httpAddr, name)
	pr := r.waitDrained(iocd, n, accepted)
	b.StopTimer()
	after := r.sampleCPU(iocd)
	stopPerf()
	waitProfile()

	m := measurement{events: n, accepted: accepted, elapsed: pr.done.Sub(start), drain: pr.done.Sub(pr.firstDelivery),
		peakRSS: peakRSS(iocd.pid()), publishRate: pubRate, rawRate: raw, rawNats: rawNats}
	m.setCPU(before, after)
	m.windowRows = r.count("SELECT count() FROM window_agg")
	r.verify(accepted, n-accepted)
	if x.extraCameras > 0 {
		b.Logf("%d sources in %d areas", r.count("SELECT uniqExact(source) FROM events"), r.count("SELECT uniqExact(area) FROM events"))
	}
	if x.alertmanager {
		r.checkAlertmanager(httpAddr)
	}
	if err := iocd.stop(30 * time.Second); err != nil {
		b.Errorf("iocd did not stop cleanly: %v\n%s", err, iocd.tail(20))
	}
	m.log(b)
	return m
}

func benchLive(b *testing.B, n int) {
	var ms measurements
	for range b.N {
		b.StopTimer()
		ms = append(ms, runLive(b, n))
	}
	ms.report(b)
}

func runLive(b *testing.B, n int) measurement {
	simBin := testenv.Bin(b, "IOC_TEST_IOCSIM_BIN", "./cmd/iocsim")
	r := newRig(b)
	defer r.close()
	r.createStreams()
	iocd, httpAddr := r.startIOCD()
	r.waitReady(iocd, httpAddr)

	before := r.sampleCPU(iocd)
	b.StartTimer()
	start := time.Now()
	pub := startProcess(b, "iocsim", filepath.Join(r.dir, "iocsim.log"), os.Environ(), simBin,
		"--nats", r.natsURL, "--rate", "0", "--count", strconv.Itoa(n), "--seed", "1", "--progress", "0")
	defer pub.stop(10 * time.Second)
	stopPerf := perfRecord(b, iocd.pid(), profileName(b))
	waitProfile := pprofCapture(b, httpAddr, profileName(b))
	pr := r.waitDrained(iocd, n, n)
	b.StopTimer()
	after := r.sampleCPU(iocd)
	stopPerf()
	waitProfile()

	select {
	case <-pub.done:
	case <-time.After(time.Minute):
		b.Fatalf("iocsim still running after iocd drained everything\n%s", pub.tail(10))
	}
	if pub.err != nil {
		b.Fatalf("iocsim: %v\n%s", pub.err, pub.tail(10))
	}
	m := measurement{events: n, accepted: n, elapsed: pr.done.Sub(start), drain: pr.done.Sub(pr.firstDelivery),
		peakRSS: peakRSS(iocd.pid()), publishRate: float64(n) / pub.end.Sub(start).Seconds()}
	st := pub.cmd.ProcessState
	m.cpu[procIOCSim] = st.UserTime() + st.SystemTime()
	m.setCPU(before, after)
	m.windowRows = r.count("SELECT count() FROM window_agg")
	r.verify(n, 0)
	if err := iocd.stop(30 * time.Second); err != nil {
		b.Errorf("iocd did not stop cleanly: %v\n%s", err, iocd.tail(20))
	}
	m.log(b)
	return m
}

// profileName names the profiles of a run after the sub-benchmark.
func profileName(b *testing.B) string {
	return "iocd-" + path.Base(b.Name())
}

// simStart returns a simulated start from which n events end before now:
// the simulated city emits NominalRate events per simulated second, and a
// margin keeps the last event time in the past (iocd rejects events more
// than 5 min ahead of its clock).
func simStart(b *testing.B, now time.Time, n int, cfg sim.Config) time.Time {
	b.Helper()
	cfg.Seed, cfg.Start = 1, now
	probe, err := sim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	span := time.Duration(float64(n)/probe.NominalRate()*1.1*float64(time.Second)) + 10*time.Minute
	return now.Add(-max(span, 2*time.Hour)).Truncate(time.Minute)
}

// preload publishes n simulated messages to IOC_EVENTS with async publish
// and waits until JetStream has stored them all. It returns how many are
// valid events and the publish rate.
// cfg says how bad the messages are and how many sources there are; the
// seed and start are the preload's.
func (r *rig) preload(n int, cfg sim.Config) (accepted int, rate float64) {
	r.b.Helper()
	now := time.Now()
	cfg.Seed, cfg.Start = 1, simStart(r.b, now, n, cfg)
	g, err := sim.New(cfg)
	if err != nil {
		r.b.Fatal(err)
	}
	var failed atomic.Int64
	var lastErr atomic.Value
	js, err := jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			lastErr.Store(err)
		}))
	if err != nil {
		r.b.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		m := g.Next()
		if m.Reason == "" {
			accepted++
			if m.EventTime.After(now) {
				r.b.Fatalf("message %d has event time %s, after now (%s)", i, m.EventTime, now)
			}
		}
		msg := &nats.Msg{Subject: m.Subject, Data: m.Data}
		if m.MsgID != "" {
			msg.Header = nats.Header{jetstream.MsgIDHeader: []string{m.MsgID}}
		}
		for {
			_, err := js.PublishMsgAsync(msg)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				r.b.Fatalf("publish message %d: %v", i, err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		r.b.Fatalf("%d publishes not acknowledged after 2 min", js.PublishAsyncPending())
	}
	rate = float64(n) / time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		r.b.Fatalf("%d publishes failed, the last with %v", f, lastErr.Load())
	}
	stream, err := r.js.Stream(context.Background(), "IOC_EVENTS")
	if err != nil {
		r.b.Fatal(err)
	}
	if got := stream.CachedInfo().State.Msgs; got != uint64(n) {
		r.b.Fatalf("IOC_EVENTS holds %d messages after publishing %d", got, n)
	}
	r.b.Logf("preloaded %d messages (%d valid) at %.0f msgs/s", n, accepted, rate)
	return accepted, rate
}

// The processes whose CPU time is measured.
const (
	procIOCD = iota
	procNATS
	procClickHouse
	procIOCSim
	numProcs
)

var procNames = [numProcs]string{"iocd", "nats", "clickhouse", "iocsim"}

// cpuSample is the CPU time used so far by the measured processes, by
// this benchmark and by the whole machine.
type cpuSample struct {
	proc        [numProcs]time.Duration
	self        time.Duration
	busy, steal time.Duration
}

// sampleCPU reads the CPU time of iocd (when not nil), the NATS server, the
// local ClickHouse server, this process and the machine.
func (r *rig) sampleCPU(iocd *process) cpuSample {
	var s cpuSample
	if iocd != nil {
		s.proc[procIOCD] = cpuTime(iocd.pid())
	}
	s.proc[procNATS] = cpuTime(r.nats.pid())
	s.proc[procClickHouse] = cpuTime(r.chPID)
	s.self = cpuTime(os.Getpid())
	s.busy, s.steal = systemCPU()
	return s
}

// setCPU fills the CPU figures of m from two samples; a publisher's CPU
// time must already be in m.cpu[procIOCSim].
func (m *measurement) setCPU(before, after cpuSample) {
	known := after.self - before.self + m.cpu[procIOCSim]
	for i := range numProcs {
		if i != procIOCSim {
			m.cpu[i] = after.proc[i] - before.proc[i]
		}
		known += m.cpu[i]
	}
	m.busy = after.busy - before.busy
	m.other = max(0, m.busy-known)
	m.steal = after.steal - before.steal
}

// measurement is the outcome of one run.
type measurement struct {
	events, accepted int
	elapsed          time.Duration // the timed part
	drain            time.Duration // from the first delivery to the end
	cpu              [numProcs]time.Duration
	busy             time.Duration // CPU time of the whole machine
	other            time.Duration // of it, what no measured process used
	steal            time.Duration // CPU time the hypervisor took
	peakRSS          int64         // iocd's VmHWM
	publishRate      float64       // messages/s the publisher achieved
	// rawRate is the reference of the same run: a plain consumer draining
	// the same stream with one AckAll per batch (backlog variants only).
	rawRate    float64
	rawNats    time.Duration // nats-server's CPU per message in that drain
	windowRows uint64        // rows in window_agg at the end
}

func (m measurement) rate() float64 { return float64(m.events) / m.elapsed.Seconds() }

func (m measurement) log(b *testing.B) {
	b.Helper()
	cpu := ""
	for i, d := range m.cpu {
		if d > 0 {
			cpu += fmt.Sprintf(" %s %.2f", procNames[i], usPerEvent(d, m.events))
		}
	}
	if m.rawRate > 0 {
		b.Logf("raw JetStream drain of the same stream (AckAll per batch of %d): %.0f msgs/s, nats-server %.2f µs/msg; iocd did %.2f of it",
			rawBatch, m.rawRate, float64(m.rawNats.Nanoseconds())/1000, m.rate()/m.rawRate)
	}
	b.Logf("%d events (%d valid) in %.2fs: %.0f events/s (%.0f/s from the first delivery, %.2fs start-up); "+
		"publish %.0f msgs/s; iocd peak RSS %.0f MB; CPU µs/event:%s, others %.2f; machine busy %.2f of %d cores, "+
		"steal %.2f; %d window_agg rows",
		m.events, m.accepted, m.elapsed.Seconds(), m.rate(), float64(m.events)/m.drain.Seconds(),
		(m.elapsed - m.drain).Seconds(), m.publishRate, float64(m.peakRSS)/(1<<20), cpu, usPerEvent(m.other, m.events),
		m.busy.Seconds()/m.elapsed.Seconds(), runtime.NumCPU(), m.steal.Seconds()/m.elapsed.Seconds(), m.windowRows)
}

func usPerEvent(d time.Duration, events int) float64 {
	return float64(d.Microseconds()) / float64(events)
}

type measurements []measurement

// report turns the runs into benchmark metrics: rates over the sum of the
// runs, the highest peak RSS.
func (ms measurements) report(b *testing.B) {
	var events int
	var elapsed, drain time.Duration
	var cpu [numProcs]time.Duration
	var other time.Duration
	var peak int64
	var pub, raw float64
	var rawNats time.Duration
	for _, m := range ms {
		raw += m.rawRate / float64(len(ms))
		rawNats += m.rawNats / time.Duration(len(ms))
		events += m.events
		elapsed += m.elapsed
		drain += m.drain
		for i := range cpu {
			cpu[i] += m.cpu[i]
		}
		other += m.other
		peak = max(peak, m.peakRSS)
		pub += m.publishRate / float64(len(ms))
	}
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(events)/drain.Seconds(), "drain-events/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(pub, "publish-msgs/s")
	if raw > 0 {
		rate := float64(events) / elapsed.Seconds()
		b.ReportMetric(raw, "raw-drain-msgs/s")
		b.ReportMetric(rate/raw, "vs-raw")
		b.ReportMetric(float64(rawNats.Nanoseconds())/1000, "raw-nats-µs/msg")
	}
	for i, d := range cpu {
		if d > 0 {
			b.ReportMetric(usPerEvent(d, events), procNames[i]+"-µs/event")
		}
	}
	b.ReportMetric(usPerEvent(other, events), "others-µs/event")
}

// followAlerts keeps n clients on iocd's alert stream, each reading every
// event as a console does, reconnecting until stopped; it returns the
// stop, which logs how many events the clients received.
func followAlerts(b *testing.B, httpAddr string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var events atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/api/v1/alerts/stream", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					time.Sleep(100 * time.Millisecond) // iocd is still starting
					continue
				}
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 64<<10), 64<<20)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "data:") {
						events.Add(1)
					}
				}
				resp.Body.Close()
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
		b.Logf("%d SSE clients received %d events", n, events.Load())
	}
}
