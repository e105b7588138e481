//go:build integration

package benchmarks

// Alert latency: from publishing the event that decides an alert to the
// alert's arrival on NATS, measured from outside the processes (a real
// nats-server, the local ClickHouse, the iocd binary). Run with
//
//	make build nats-server clickhouse
//	IOC_TEST_IOCD_BIN=bin/iocd IOC_TEST_NATS_SERVER_BIN=bin/nats-server \
//	  go test -tags integration -run '^$' -bench AlertLatency -benchtime 1x -timeout 30m ./benchmarks/
//
// IOC_BENCH_ALERT_SAMPLES sets the alerts measured per run (default 300),
// IOC_BENCH_ALERT_LOADS the background rates in events/s (default
// "10,5000,10000") and IOC_BENCH_ALERT_FLUSH the IOC_FLUSH_INTERVAL values
// (default "1s,250ms").

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The rules iocd runs in these benchmarks. They select only the sources
// the benchmark measures, so the background load never raises an alert.
const latencyRules = `rules:
  - name: bench_camera_fire
    kind: event
    summary: "Camera {{source}} phát hiện {{type}} (độ tin cậy {{value}})"
    match: {kind: camera, type: fire, source: "lat-cam-*"}
    when: ["confidence >= 0.8"]
    severity: critical
    resolve_after: 1m
    group_by: [source]
  - name: bench_water_level
    kind: threshold
    summary: "Mực nước tại {{source}} {{value}} m ≥ {{threshold}} m"
    match: {kind: environment, type: water_level, metric: height, source: "lat-wl-*"}
    window: 1m
    agg: max
    op: ">="
    threshold: 3.5
    severity: warning
    group_by: [source]
`

// alertKind is what a latency run measures.
type alertKind int

const (
	// eventAlert: an event rule fires on the event itself. The clock runs
	// from publishing the crossing event.
	eventAlert alertKind = iota
	// windowAlert: a threshold rule fires when the pane holding the
	// crossing reading becomes final. The clock runs from publishing the
	// later reading of the same source that makes the pane final.
	windowAlert
)

func (k alertKind) rule() string {
	if k == eventAlert {
		return "bench_camera_fire"
	}
	return "bench_water_level"
}

// BenchmarkAlertLatency measures how long an alert takes to reach NATS
// (a core subscription on ioc.alerts.>), for every IOC_FLUSH_INTERVAL in
// IOC_BENCH_ALERT_FLUSH and every background rate in IOC_BENCH_ALERT_LOADS:
//
//   - event: publishing a camera fire detection (confidence 0.9, each
//     from a new camera, so each fires a new alert) → its firing
//     transition. iocd publishes it while it handles the event.
//   - window: a water-level reading of 4.0 m (threshold 3.5 m, max over
//     1m, not early) was published for minute S of each of the sources
//     beforehand; publishing a reading of that source at S+1m+2m (the
//     default allowed lateness) makes the pane final → its firing
//     transition. Publishing is an upper bound of the moment the pane
//     becomes final: the time includes JetStream's delivery to iocd, the
//     wait for the next batch seal (at most IOC_FLUSH_INTERVAL, when
//     iocd collects final panes and evaluates threshold rules) and the
//     publication.
//
// The background load is environment readings (weather, air quality,
// noise) from 500 stations, published with async JetStream publish at a
// steady rate by this process; it runs from 2 s before the first
// measured event until the last alert arrives. Each measured event is
// published with a synchronous JetStream publish, 20–100 ms apart (at
// random, so they fall at every phase of the seal cadence).
//
// Reported: p50-ms, p99-ms (nearest rank) and max-ms over all samples,
// bg-events/s achieved, and iocd-cores, iocd's CPU time during the
// measurement divided by its duration. The log line of each run also has
// p90, the minimum, and the CPU of nats-server, ClickHouse and this process.
func BenchmarkAlertLatency(b *testing.B) {
	samples := envInt(b, "IOC_BENCH_ALERT_SAMPLES", 300)
	loads := envList(b, "IOC_BENCH_ALERT_LOADS", "10,5000,10000", func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n < 1 {
			err = errors.New("not positive")
		}
		return n, err
	})
	flushes := envList(b, "IOC_BENCH_ALERT_FLUSH", "1s,250ms", func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = errors.New("not positive")
		}
		return d, err
	})
	for _, kind := range []alertKind{eventAlert, windowAlert} {
		name := map[alertKind]string{eventAlert: "event", windowAlert: "window"}[kind]
		b.Run(name, func(b *testing.B) {
			for _, flush := range flushes {
				for _, load := range loads {
					b.Run(fmt.Sprintf("flush=%s/load=%d", flush, load), func(b *testing.B) {
						benchAlertLatency(b, kind, flush, load, samples)
					})
				}
			}
		})
	}
}

func envInt(b *testing.B, env string, def int) int {
	b.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive whole number", env, s)
	}
	return n
}

func envList[T any](b *testing.B, env, def string, parse func(string) (T, error)) []T {
	b.Helper()
	s := os.Getenv(env)
	if s == "" {
		s = def
	}
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("%s=%q: %q: %v", env, s, f, err)
		}
		out = append(out, v)
	}
	return out
}

func benchAlertLatency(b *testing.B, kind alertKind, flush time.Duration, load, samples int) {
	var all []time.Duration
	var bgRate, iocdCores float64
	for range b.N {
		b.StopTimer()
		res := runAlertLatency(b, kind, flush, load, samples)
		all = append(all, res.latencies...)
		bgRate += res.bgRate / float64(b.N)
		iocdCores += res.iocdCores / float64(b.N)
	}
	slices.Sort(all)
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
	b.ReportMetric(bgRate, "bg-events/s")
	b.ReportMetric(iocdCores, "iocd-cores")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

type latencyResult struct {
	latencies []time.Duration
	bgRate    float64
	iocdCores float64
}

// latencyAreas are the Huế wards the measured sources are spread over.
var latencyAreas = []string{"phu-bai", "kim-long", "phu-xuan", "huong-thuy", "thuan-hoa", "vy-da"}

// eventTime formats an event time as publishers in Huế do.
func eventTime(t time.Time) string {
	return t.In(time.FixedZone("ICT", 7*3600)).Format("2006-01-02T15:04:05.000Z07:00")
}

func runAlertLatency(b *testing.B, kind alertKind, flush time.Duration, load, samples int) latencyResult {
	r := newRig(b)
	defer r.close()
	rules := filepath.Join(r.dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(latencyRules), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"IOC_RULES=" + rules, "IOC_FLUSH_INTERVAL=" + flush.String()}
	if kind == windowAlert {
		// Only the watermark may make the measured panes final: a source's
		// silence between its two readings must not (default 1m).
		env = append(env, "IOC_IDLE_TIMEOUT=10m")
	}
	iocd, httpAddr := r.startIOCD(env...)
	r.waitReady(iocd, httpAddr)

	run := strconv.FormatInt(time.Now().UnixNano()%1e12, 36)
	obs := newAlertObserver(b, r, kind.rule())
	defer obs.close()

	// The crossing readings of the window run, published and stored before
	// anything is measured: minute S is four minutes back, so S+1m+2m is
	// in the past.
	now := time.Now()
	paneStart := now.Truncate(time.Minute).Add(-4 * time.Minute)
	sources := make([]string, samples)
	for i := range sources {
		if kind == eventAlert {
			sources[i] = fmt.Sprintf("lat-cam-%s-%04d", run, i)
		} else {
			sources[i] = fmt.Sprintf("lat-wl-%s-%04d", run, i)
		}
	}
	area := func(i int) string { return latencyAreas[i%len(latencyAreas)] }
	if kind == windowAlert {
		var lastSeq uint64
		for i, src := range sources {
			ack, err := r.js.PublishMsg(context.Background(), waterLevel(run+"-x", i, src, area(i), paneStart.Add(10*time.Second), 4.0))
			if err != nil {
				b.Fatalf("publish crossing reading: %v", err)
			}
			lastSeq = ack.Sequence
		}
		r.waitAcked(iocd, lastSeq)
	}

	bg := startBackground(b, r.natsURL, run, load)
	defer bg.stop()
	time.Sleep(2 * time.Second)

	before := r.sampleCPU(iocd)
	b.StartTimer()
	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 7))
	var maxAck time.Duration // the slowest PubAck of a measured event: a stall in nats-server's store
	for i, src := range sources {
		var msg *nats.Msg
		if kind == eventAlert {
			msg = cameraFire(run, i, src, area(i), time.Now())
		} else {
			msg = waterLevel(run+"-f", i, src, area(i), paneStart.Add(3*time.Minute), 1.0)
		}
		t0 := time.Now()
		obs.sent(src, t0)
		if _, err := r.js.PublishMsg(context.Background(), msg); err != nil {
			b.Fatalf("publish measured event %d: %v", i, err)
		}
		maxAck = max(maxAck, time.Since(t0))
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
	}
	obs.wait(iocd, samples, 30*time.Second)
	elapsed := time.Since(start)
	b.StopTimer()
	after := r.sampleCPU(iocd)
	bgRate := bg.stop()

	cores := func(i int) float64 { return (after.proc[i] - before.proc[i]).Seconds() / elapsed.Seconds() }
	res := latencyResult{bgRate: bgRate, iocdCores: cores(procIOCD)}
	res.latencies = obs.latencies(b, sources)
	if kind == windowAlert {
		obs.checkEvalTimes(b, paneStart.Add(time.Minute))
	}
	slices.Sort(res.latencies)
	pending := ""
	if cons, err := r.js.Consumer(context.Background(), "IOC_EVENTS", "iocd"); err == nil {
		if info, err := cons.Info(context.Background()); err == nil {
			pending = fmt.Sprintf("; consumer pending %d, ack pending %d at the end", info.NumPending, info.NumAckPending)
		}
	}
	b.Logf("%s, IOC_FLUSH_INTERVAL=%s, background %.0f events/s: %d alerts, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, min %.1f ms; "+
		"CPU cores used: iocd %.2f, nats-server %.2f, ClickHouse %.2f, this process %.2f%s",
		kind.rule(), flush, bgRate, len(res.latencies), ms(percentile(res.latencies, 0.5)), ms(percentile(res.latencies, 0.9)),
		ms(percentile(res.latencies, 0.99)), ms(res.latencies[len(res.latencies)-1]), ms(res.latencies[0]),
		cores(procIOCD), cores(procNATS), cores(procClickHouse), (after.self-before.self).Seconds()/elapsed.Seconds(), pending)
	b.Logf("slowest publish round trip of a measured event %.1f ms; ClickHouse inserts by iocd: %s", ms(maxAck), insertTimes(httpAddr))
	if err := iocd.stop(30 * time.Second); err != nil {
		b.Errorf("iocd did not stop cleanly: %v\n%s", err, iocd.tail(20))
	}
	return res
}

// insertTimes summarises iocd's ioc_clickhouse_write_seconds histogram:
// a slow insert holds up the batch seals, which is where threshold rules
// are evaluated.
func insertTimes(httpAddr string) string {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	type bucket struct{ le, n float64 }
	var buckets []bucket
	var total float64
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, "ioc_clickhouse_write_seconds_bucket{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		_, le, _ := strings.Cut(labels, `,le="`) // "table" ends in le= too
		le, _, _ = strings.Cut(le, `"`)
		n, _ := strconv.ParseFloat(value, 64)
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = math.Inf(1), nil
			total += n
		}
		if err == nil {
			buckets = append(buckets, bucket{bound, n})
		}
	}
	// Cumulative counts over all tables, by bound.
	byLE := map[float64]float64{}
	var bounds []float64
	for _, bk := range buckets {
		if _, ok := byLE[bk.le]; !ok {
			bounds = append(bounds, bk.le)
		}
		byLE[bk.le] += bk.n
	}
	slices.Sort(bounds)
	slowest, over := 0.0, 0.0
	for _, le := range bounds {
		if byLE[le] < total {
			continue
		}
		slowest = le
		break
	}
	for _, le := range bounds {
		if le >= 0.2 {
			over = total - byLE[le]
			return fmt.Sprintf("%.0f, %.0f slower than %.3f s, the slowest ≤ %.3f s", total, over, le, slowest)
		}
	}
	return fmt.Sprintf("%.0f", total)
}

// waitAcked waits until iocd has acknowledged IOC_EVENTS up to seq: what
// came before is stored and its windows are in iocd's state.
func (r *rig) waitAcked(iocd *process, seq uint64) {
	r.b.Helper()
	cons, err := r.js.Consumer(context.Background(), "IOC_EVENTS", "iocd")
	if err != nil {
		r.b.Fatal(err)
	}
	waitFor(r.b, time.Minute, fmt.Sprintf("iocd to acknowledge stream sequence %d", seq), func() (bool, string) {
		if iocd.exited() {
			r.b.Fatalf("iocd exited: %v\n%s", iocd.err, iocd.tail(30))
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.AckFloor.Stream >= seq, fmt.Sprintf("ack floor %d", info.AckFloor.Stream)
	})
}

func cameraFire(run string, i int, src, area string, t time.Time) *nats.Msg {
	id := fmt.Sprintf("lat-%s-c-%d", run, i)
	data := fmt.Sprintf(`{"id":%q,"kind":"camera","type":"fire","source":%q,"area":%q,"time":%q,`+
		`"location":{"lat":16.4022,"lon":107.7019},"metrics":{"confidence":0.9},`+
		`"attrs":{"snapshot_url":"https://ioc.hue.example/snapshots/%s/%d.jpg","model":"firesmoke-v3"}}`,
		id, src, area, eventTime(t), src, t.Unix())
	return eventMsg("camera", area, src, id, data)
}

func waterLevel(run string, i int, src, area string, t time.Time, height float64) *nats.Msg {
	id := fmt.Sprintf("lat-%s-w-%d", run, i)
	data := fmt.Sprintf(`{"id":%q,"kind":"environment","type":"water_level","source":%q,"area":%q,"time":%q,`+
		`"location":{"lat":16.4586,"lon":107.556},"metrics":{"height":%.2f},"attrs":{"river":"huong"}}`,
		id, src, area, eventTime(t), height)
	return eventMsg("environment", area, src, id, data)
}

func eventMsg(kind, area, src, id, data string) *nats.Msg {
	return &nats.Msg{Subject: "ioc.events." + kind + "." + area + "." + src, Data: []byte(data),
		Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
}

// alertObserver receives alert transitions on a core NATS subscription of
// its own connection, so that no publisher's traffic delays them.
type alertObserver struct {
	b    *testing.B
	nc   *nats.Conn
	rule string

	mu        sync.Mutex
	sentAt    map[string]time.Time // by source: when its measured event was published
	gotAt     map[string]time.Time // by source: when its firing transition arrived
	evalTimes map[string]string    // by source: the Ioc-Eval-Time header
	early     []string             // sources whose alert came before the measured event
	other     int                  // other transitions of the rule
	bad       error
	count     atomic.Int64
}

func newAlertObserver(b *testing.B, r *rig, rule string) *alertObserver {
	b.Helper()
	nc, err := nats.Connect(r.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	o := &alertObserver{b: b, nc: nc, rule: rule, sentAt: map[string]time.Time{}, gotAt: map[string]time.Time{},
		evalTimes: map[string]string{}}
	sub, err := nc.Subscribe("ioc.alerts.>", o.receive)
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has the subscription
		b.Fatal(err)
	}
	return o
}

func (o *alertObserver) receive(m *nats.Msg) {
	at := time.Now()
	var a struct {
		Rule, Status, Source string
	}
	err := json.Unmarshal(m.Data, &a)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil:
		o.bad = fmt.Errorf("alert on %s: %v", m.Subject, err)
	case a.Rule != o.rule || a.Status != "firing":
		o.other++
	default:
		if _, ok := o.sentAt[a.Source]; !ok {
			o.early = append(o.early, a.Source)
			return
		}
		if _, dup := o.gotAt[a.Source]; dup {
			o.bad = fmt.Errorf("two firing transitions for %s", a.Source)
			return
		}
		o.gotAt[a.Source] = at
		o.evalTimes[a.Source] = m.Header.Get("Ioc-Eval-Time")
		o.count.Add(1)
	}
}

// sent records when the measured event of a source is published; call it
// just before publishing.
func (o *alertObserver) sent(src string, at time.Time) {
	o.mu.Lock()
	o.sentAt[src] = at
	o.mu.Unlock()
}

func (o *alertObserver) wait(iocd *process, n int, timeout time.Duration) {
	o.b.Helper()
	deadline := time.Now().Add(timeout)
	for o.count.Load() < int64(n) {
		if iocd.exited() {
			o.b.Fatalf("iocd exited: %v\n%s", iocd.err, iocd.tail(30))
		}
		if time.Now().After(deadline) {
			o.b.Fatalf("%d of %d alerts arrived within %s of the last measured event\n%s", o.count.Load(), n, timeout, iocd.tail(20))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// latencies returns publish → arrival for every source, failing on an
// alert that came too early, twice or unreadable.
func (o *alertObserver) latencies(b *testing.B, sources []string) []time.Duration {
	b.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bad != nil {
		b.Fatal(o.bad)
	}
	if len(o.early) > 0 {
		b.Fatalf("%d alerts arrived before their measured event was published, e.g. %s", len(o.early), o.early[0])
	}
	if o.other > 0 {
		b.Logf("%d other transitions of %s (not counted)", o.other, o.rule)
	}
	out := make([]time.Duration, 0, len(sources))
	for _, src := range sources {
		got, ok := o.gotAt[src]
		if !ok {
			b.Fatalf("no alert for %s", src)
		}
		out = append(out, got.Sub(o.sentAt[src]))
	}
	return out
}

// checkEvalTimes checks that every window alert was decided at the end of
// the pane holding its crossing reading.
func (o *alertObserver) checkEvalTimes(b *testing.B, paneEnd time.Time) {
	b.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for src, s := range o.evalTimes {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !t.Equal(paneEnd) {
			b.Fatalf("alert for %s has Ioc-Eval-Time %q, want the pane end %s", src, s, paneEnd.UTC().Format(time.RFC3339Nano))
		}
	}
}

func (o *alertObserver) close() { o.nc.Close() }

// background publishes environment readings at a steady rate on a
// connection of its own until stopped.
type background struct {
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
	rate     float64
}

func startBackground(b *testing.B, url, run string, rate int) *background {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	bg := &background{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(bg.done)
		defer nc.Close()
		const stations = 500
		start := time.Now()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		sent := 0
		for {
			select {
			case <-bg.quit:
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(30 * time.Second):
				}
				bg.rate = float64(sent) / time.Since(start).Seconds()
				if f := failed.Load(); f > 0 {
					b.Errorf("%d background publishes failed", f)
				}
				return
			case <-tick.C:
			}
			due := int(float64(rate) * time.Since(start).Seconds())
			for ; sent < due; sent++ {
				msg := reading(run, sent, sent%stations, time.Now())
				for {
					if _, err := js.PublishMsgAsync(msg); err == nil {
						break
					} else if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
						b.Errorf("background publish: %v", err)
						return
					}
				}
			}
		}
	}()
	return bg
}

// stop ends the load and returns the rate it achieved.
func (bg *background) stop() float64 {
	bg.stopOnce.Do(func() { close(bg.quit) })
	<-bg.done
	return bg.rate
}

// reading is the n-th background event: a weather, air-quality or noise
// reading of station st.
func reading(run string, n, st int, t time.Time) *nats.Msg {
	area := latencyAreas[st%len(latencyAreas)]
	id := fmt.Sprintf("bg-%s-%d", run, n)
	var typ, src, metrics, attrs string
	switch st % 3 {
	case 0:
		typ, src = "weather", fmt.Sprintf("bg-ws-%03d", st)
		metrics = fmt.Sprintf(`{"temperature":%.1f,"relativeHumidity":%.2f,"windSpeed":%.1f}`, 20+float64(n%100)/10, 0.6+float64(n%30)/100, float64(n%80)/10)
		attrs = `{"interval_s":"60"}`
	case 1:
		typ, src = "air_quality", fmt.Sprintf("bg-aq-%03d", st)
		metrics = fmt.Sprintf(`{"pm25":%.1f,"pm10":%.1f,"no2":%.1f}`, 10+float64(n%400)/10, 20+float64(n%600)/10, 5+float64(n%200)/10)
		attrs = `{"interval_s":"60"}`
	default:
		typ, src = "noise", fmt.Sprintf("bg-ns-%03d", st)
		metrics = fmt.Sprintf(`{"LAeq":%.1f,"LAmax":%.1f}`, 50+float64(n%200)/10, 65+float64(n%200)/10)
		attrs = `{"interval_s":"60"}`
	}
	data := fmt.Sprintf(`{"id":%q,"kind":"environment","type":%q,"source":%q,"area":%q,"time":%q,`+
		`"location":{"lat":16.46,"lon":107.59},"metrics":%s,"attrs":%s}`, id, typ, src, area, eventTime(t), metrics, attrs)
	return eventMsg("environment", area, src, id, data)
}
