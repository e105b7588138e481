//go:build integration

package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
)

// The rules of the determinism test: short and long windows, an early
// rule, a rate and a group over several stations of an area.
const determinismRules = `rules:
  - name: traffic_slow_2m
    kind: threshold
    match: {kind: traffic, type: flow, metric: averageVehicleSpeed}
    window: 2m
    agg: avg
    op: "<="
    threshold: 28
    clear: 32
    severity: warning
    group_by: [source]
  - name: level_low_5m
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 5m
    agg: min
    op: "<="
    threshold: 0.6
    severity: info
    group_by: [source]
  - name: level_high_10m
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 10m
    agg: max
    op: ">="
    early: true
    levels:
      - {threshold: 1.0, severity: info}
      - {threshold: 2.0, severity: warning}
      - {threshold: 3.5, severity: critical}
    clear: 0.9
    group_by: [source]
  - name: level_rising_60m
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 60m
    agg: rate_per_hour
    op: ">="
    threshold: 0.5
    clear: 0.1
    severity: warning
    group_by: [source]
  - name: rain_area_10m
    kind: threshold
    match: {kind: environment, type: rainfall, metric: precipitation}
    window: 10m
    agg: sum
    op: ">="
    levels:
      - {threshold: 20, severity: info}
      - {threshold: 45, severity: warning}
    group_by: [area]
`

// detRule is what the value check needs of a rule.
type detRule struct {
	kind, typ, metric string
	window            time.Duration
	agg               string
	byArea, early     bool
}

var detRules = map[string]detRule{
	"traffic_slow_2m":  {"traffic", "flow", "averageVehicleSpeed", 2 * time.Minute, "avg", false, false},
	"level_low_5m":     {"environment", "water_level", "height", 5 * time.Minute, "min", false, false},
	"level_high_10m":   {"environment", "water_level", "height", 10 * time.Minute, "max", false, true},
	"level_rising_60m": {"environment", "water_level", "height", 60 * time.Minute, "rate_per_hour", false, false},
	"rain_area_10m":    {"environment", "rainfall", "precipitation", 10 * time.Minute, "sum", true, false},
}

// determinismCorpus: every device reports every 20 s of event time, with
// jitter that reorders events inside the allowed lateness (no correction:
// a decision's window is final before it is read, so its value can be
// recomputed from window_agg FINAL), rivers that rise and fall through
// the ladder, traffic that slows and recovers, and bursts of rain on
// several gauges of two areas.
func determinismCorpus(baseMs int64) []message {
	r := rand.New(rand.NewSource(42))
	type dev struct{ kind, typ, area, source string }
	devs := []dev{
		{"traffic", "flow", "phu-hoi", "td-01"}, {"traffic", "flow", "phu-hoi", "td-02"}, {"traffic", "flow", "vinh-ninh", "td-03"},
		{"environment", "water_level", "kim-long", "wl-kim-long"}, {"environment", "water_level", "huong-tra", "wl-phu-oc"},
		{"environment", "rainfall", "kim-long", "rg-01"}, {"environment", "rainfall", "kim-long", "rg-02"},
		{"environment", "rainfall", "huong-tra", "rg-03"}, {"environment", "rainfall", "huong-tra", "rg-04"},
	}
	var out []message
	const steps = 270 // 90 minutes of event time
	for step := 0; step < steps; step++ {
		minute := float64(step) / 3
		for i, d := range devs {
			tm := baseMs + int64(step)*20_000 + r.Int63n(40_000) // up to 40 s out of order
			var metrics map[string]float64
			switch d.typ {
			case "flow":
				speed := 30 + 6*math.Sin(minute/7+float64(i)) + r.Float64()*4 - 2
				metrics = map[string]float64{"averageVehicleSpeed": math.Round(speed*100) / 100, "intensity": float64(r.Intn(40))}
			case "water_level":
				crest := 45.0 + 10*float64(i-3)
				h := 0.4 + 3.8*math.Exp(-math.Pow((minute-crest)/18, 2)) + r.Float64()*0.1
				metrics = map[string]float64{"height": math.Round(h*1000) / 1000}
			case "rainfall":
				p := 0.0
				if burst := math.Mod(minute+float64(i)*4, 30); burst < 8 {
					p = math.Round((1+r.Float64()*2.5)*10) / 10
				}
				metrics = map[string]float64{"precipitation": p}
			}
			s := sample{id: fmt.Sprintf("det-%04d-%d", step, i), kind: d.kind, typ: d.typ, source: d.source, area: d.area,
				timeMs: tm, metrics: metrics}
			out = append(out, message{subject: subjectOf(s), data: encode(s), msgID: s.id})
		}
	}
	return out
}

// detTransition is one threshold transition as both runs must agree on.
type detTransition struct {
	rule, fingerprint, id string
	seq                   int
	status, severity      string
	source, area          string
	value                 float64
	evalTime              string
}

func (d detTransition) String() string {
	return fmt.Sprintf("%s %s#%d %s/%s %s %s=%g @%s", d.rule, d.id, d.seq, d.status, d.severity, d.area, d.source, d.value, d.evalTime)
}

// settledAlerts waits until IOC_ALERTS stops growing (the last panes are
// decided by the idle timeout after the drain) and the alerts table holds
// it, then returns its threshold transitions sorted.
func settledAlerts(t *testing.T, js jetstream.JetStream, conn driver.Conn, db string) []detTransition {
	t.Helper()
	last, since := -1, time.Now()
	waitFor(t, 90*time.Second, "IOC_ALERTS to stop growing", func() (bool, string) {
		n := len(readAlerts(t, js))
		if n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 6*time.Second, fmt.Sprintf("%d transitions", n)
	})
	checkAlertInvariants(t, js, conn, db)
	var out []detTransition
	for _, a := range readAlerts(t, js) {
		if _, ok := detRules[a.Rule]; !ok {
			t.Fatalf("an alert of a rule not in the file: %+v", a)
		}
		out = append(out, detTransition{a.Rule, a.Fingerprint, a.ID, a.Seq, a.Status, a.Severity, a.Source, a.Area, a.Value, a.EvalTime})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].evalTime != out[j].evalTime {
			return out[i].evalTime < out[j].evalTime
		}
		return out[i].id+fmt.Sprint(out[i].seq) < out[j].id+fmt.Sprint(out[j].seq)
	})
	return out
}

// TestSameAlertsEveryTime: one corpus, run three times: published slowly
// to a running iocd; as a backlog to an iocd with other batch, flush and
// early settings that is SIGKILLed mid-drain; and to two partitioned
// processes. All runs must publish the same threshold transitions (ids,
// values, eval times), and every value must be the rule's aggregate of
// window_agg FINAL at its eval time.
func TestSameAlertsEveryTime(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(determinismRules), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs := determinismCorpus(corpusBase())

	// Run 1: live, a little at a time.
	db1, conn := testDB(t)
	ns1 := startNATS(t)
	d1 := newIOCD(t, ns1.url(), db1, "IOC_RULES="+rules, "IOC_EARLY_INTERVAL=1s", "IOC_BATCH_SIZE=2000", "IOC_FLUSH_INTERVAL=300ms")
	d1.start()
	_, js1 := connectJS(t, ns1.url())
	waitStream(t, js1)
	<-publishSlowly(t, js1, msgs, 60, 100*time.Millisecond)
	waitDrained(t, js1)
	slow := settledAlerts(t, js1, conn, db1)

	// Run 2: the whole corpus waits in the stream; iocd drains it with
	// other settings and is killed once on the way.
	db2, _ := testDB(t)
	ns2 := startNATS(t)
	boot := newIOCD(t, ns2.url(), db2, "IOC_RULES="+rules)
	boot.start()
	_, js2 := connectJS(t, ns2.url())
	waitStream(t, js2)
	boot.kill()
	publish(t, js2, msgs)
	// Small batches and a small prefetch make the drain take a while, so
	// that the kill lands in its middle.
	d2 := newIOCD(t, ns2.url(), db2, "IOC_RULES="+rules, "IOC_EARLY_INTERVAL=7s", "IOC_BATCH_SIZE=100",
		"IOC_MAX_ACK_PENDING=200", "IOC_FLUSH_INTERVAL=1s")
	d2.start()
	var floor uint64
	for deadline := time.Now().Add(60 * time.Second); floor < uint64(len(msgs)/2); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the backlog run acknowledged only %d messages in 60 s", floor)
		}
		if info := consumerInfo(t, js2); info != nil {
			floor = infoFloor(info)
		}
	}
	d2.kill()
	if floor >= uint64(len(msgs)) {
		t.Fatalf("the kill came after the drain (ack floor %d of %d): it proves nothing", floor, len(msgs))
	}
	t.Logf("killed the backlog run at ack floor %d of %d, %d transitions published", floor, len(msgs), len(readAlerts(t, js2)))
	d2.start()
	waitDrained(t, js2)
	backlog := settledAlerts(t, js2, conn, db2)

	// Run 3: two processes sharing the stream by area partition, each
	// deciding for its own areas.
	db3, _ := testDB(t)
	ns3 := startNATS(t)
	for _, name := range []string{"p1", "p2"} {
		newIOCD(t, ns3.url(), db3, "IOC_RULES="+rules, fmt.Sprintf("IOC_PARTITIONS=%d", scaleParts),
			"IOC_LEASE_TTL="+leaseTTL.String(), "IOC_INSTANCE="+name).start()
	}
	_, js3 := connectJS(t, ns3.url())
	waitStream(t, js3)
	<-publishSlowly(t, js3, msgs, 200, 50*time.Millisecond)
	waitPartitionsDrained(t, js3)
	partitioned := settledAlerts(t, js3, conn, db3)

	perRule := map[string]int{}
	for _, a := range slow {
		perRule[a.rule]++
	}
	t.Logf("%d threshold transitions: %v", len(slow), perRule)
	for rule := range detRules {
		if perRule[rule] < 2 {
			t.Errorf("rule %s: %d transitions; the corpus must exercise every rule", rule, perRule[rule])
		}
	}
	if d := diffTransitions(slow, backlog); d != "" {
		t.Fatalf("the slow and the backlog runs differ (slow − backlog):\n%s", d)
	}
	if d := diffTransitions(slow, partitioned); d != "" {
		t.Fatalf("the single-process and the partitioned runs differ (single − partitioned):\n%s", d)
	}
	checkValuesAgainstWindows(t, conn, db1, slow)
}

func diffTransitions(a, b []detTransition) string {
	in := func(xs []detTransition) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x.String()] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var d []string
	for _, x := range a {
		if !mb[x.String()] {
			d = append(d, "- "+x.String())
		}
	}
	for _, x := range b {
		if !ma[x.String()] {
			d = append(d, "+ "+x.String())
		}
	}
	return strings.Join(d[:min(len(d), 30)], "\n")
}

// checkValuesAgainstWindows recomputes each transition's value from the
// final 1-minute rows of its group in [eval − window, eval). A transition
// of the early rule may carry a partial value: at most the final one, and
// past the same threshold.
func checkValuesAgainstWindows(t *testing.T, conn driver.Conn, db string, ts []detTransition) {
	t.Helper()
	type pane struct {
		startMs             int64
		source, area        string
		count               uint64
		sum, min, max, last float64
	}
	panes := map[string][]pane{} // kind/type/metric → panes, by start
	rows, err := conn.Query(context.Background(), `SELECT toInt64(toUInt32(window_start)) * 1000, kind, type, metric, source, area,
		count, sum, min, max, last, final FROM `+db+`.window_agg FINAL WHERE window_size_s = 60 ORDER BY window_start, area, source`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p pane
		var kind, typ, metric string
		var final uint8
		if err := rows.Scan(&p.startMs, &kind, &typ, &metric, &p.source, &p.area, &p.count, &p.sum, &p.min, &p.max, &p.last, &final); err != nil {
			t.Fatal(err)
		}
		if final != 1 {
			t.Fatalf("window %s %s %d not final after the drain", metric, p.source, p.startMs)
		}
		k := kind + "/" + typ + "/" + metric
		panes[k] = append(panes[k], p)
	}
	rows.Close()
	checked, early := 0, 0
	for _, tr := range ts {
		rule := detRules[tr.rule]
		evalAt, err := time.Parse(time.RFC3339Nano, tr.evalTime)
		if err != nil {
			t.Fatalf("%s: Ioc-Eval-Time %q: %v", tr, tr.evalTime, err)
		}
		to := evalAt.UnixMilli()
		from := to - rule.window.Milliseconds()
		var count uint64
		var sum float64
		lo, hi := math.Inf(1), math.Inf(-1)
		bySource := map[string][]pane{}
		var sources []string
		for _, p := range panes[rule.kind+"/"+rule.typ+"/"+rule.metric] {
			if p.startMs < from || p.startMs+60_000 > to || rule.byArea && p.area != tr.area || !rule.byArea && p.source != tr.source {
				continue
			}
			count += p.count
			sum += p.sum
			lo, hi = math.Min(lo, p.min), math.Max(hi, p.max)
			if bySource[p.source] == nil {
				sources = append(sources, p.source)
			}
			bySource[p.source] = append(bySource[p.source], p)
		}
		if count == 0 {
			t.Fatalf("%s: no final window in [%s, %s)", tr, time.UnixMilli(from).UTC(), evalAt)
		}
		var want float64
		switch rule.agg {
		case "avg":
			want = sum / float64(count)
		case "sum":
			want = sum
		case "min":
			want = lo
		case "max":
			want = hi
		case "rate_per_hour":
			ps := bySource[tr.source]
			var n, st, sv, stt, stv float64
			for _, p := range ps {
				x, y := float64(p.startMs-from), p.sum/float64(p.count)
				n, st, sv, stt, stv = n+1, st+x, sv+y, stt+x*x, stv+x*y
			}
			want = (n*stv - st*sv) / (n*stt - st*st) * 3_600_000
		}
		want = math.Round(want*1000) / 1000
		switch {
		case math.Abs(tr.value-want) <= 0.0011:
		case rule.early && tr.status == "firing" && tr.value < want:
			early++ // decided on a partial window; the final one holds it
		default:
			t.Errorf("%s: value %g, but the %s of window_agg FINAL over [%s, %s) is %g", tr, tr.value, rule.agg,
				time.UnixMilli(from).UTC().Format("15:04"), evalAt.UTC().Format("15:04"), want)
		}
		checked++
	}
	t.Logf("%d transition values recomputed from window_agg FINAL (%d early, below their final window)", checked, early)
}
