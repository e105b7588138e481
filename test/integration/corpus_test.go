//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// message is one publication of the corpus.
type message struct {
	subject string
	data    []byte
	msgID   string // "" = no Nats-Msg-Id header
	reason  string // expected rejection reason, "" for a valid event
}

// sample is a valid event as the ground truth sees it.
type sample struct {
	id, kind, typ, source, area string
	timeMs                      int64
	metrics                     map[string]float64
}

const (
	horizonMs = int64(time.Hour / time.Millisecond)
	windowMs  = int64(60_000)
)

type deviceSpec struct {
	kind, typ, area, source string
	metrics                 func(r *rand.Rand) map[string]float64
}

func devices() []deviceSpec {
	return devicesIn([]string{"kim-long", "phu-xuan", "vy-da", "thuan-hoa", "huong-an", "an-cuu", "thuy-xuan", "duong-no"})
}

// devicesIn puts a water-level station, a traffic detector and a camera in
// each area.
func devicesIn(areas []string) []deviceSpec {
	var out []deviceSpec
	for i, a := range areas {
		out = append(out,
			deviceSpec{"environment", "water_level", a, fmt.Sprintf("wl-%d", i), func(r *rand.Rand) map[string]float64 {
				return map[string]float64{"height": math.Round(r.Float64()*400) / 100}
			}},
			deviceSpec{"traffic", "flow", a, fmt.Sprintf("td-%d", i), func(r *rand.Rand) map[string]float64 {
				return map[string]float64{"intensity": float64(r.Intn(120)), "averageVehicleSpeed": math.Round(r.Float64()*6000) / 100,
					"occupancy": math.Round(r.Float64()*100) / 100}
			}},
			deviceSpec{"camera", "vehicle_count", a, fmt.Sprintf("cam-%d", i), func(r *rand.Rand) map[string]float64 {
				return map[string]float64{"motorbike": float64(r.Intn(80)), "car": float64(r.Intn(20))}
			}},
		)
	}
	return out
}

func encode(s sample) []byte {
	t := time.UnixMilli(s.timeMs).In(time.FixedZone("ICT", 7*3600)).Format("2006-01-02T15:04:05.000Z07:00")
	b, _ := json.Marshal(map[string]any{"id": s.id, "kind": s.kind, "type": s.typ, "source": s.source, "area": s.area,
		"time": t, "metrics": s.metrics, "attrs": map[string]string{"note": "integration"}})
	return b
}

func subjectOf(s sample) string {
	return fmt.Sprintf("ioc.events.%s.%s.%s", s.kind, s.area, s.source)
}

// buildCorpus makes a seeded stream: in-order and out-of-order events, late
// events inside and beyond the correction horizon, duplicates with and
// without Nats-Msg-Id, and every invalid example of schemas/examples.
func buildCorpus(t *testing.T, seed int64, baseMs int64, steps int) []message {
	t.Helper()
	return buildCorpusOf(t, seed, baseMs, steps, devices())
}

func buildCorpusOf(t *testing.T, seed int64, baseMs int64, steps int, devs []deviceSpec) []message {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var out []message
	var published []message
	latest := map[string]int64{}
	n := 0
	emit := func(d deviceSpec, timeMs int64) {
		n++
		s := sample{id: fmt.Sprintf("it-%d-%06d", seed, n), kind: d.kind, typ: d.typ, source: d.source, area: d.area,
			timeMs: timeMs, metrics: d.metrics(r)}
		m := message{subject: subjectOf(s), data: encode(s), msgID: s.id}
		out = append(out, m)
		published = append(published, m)
	}
	for step := 0; step < steps; step++ {
		for _, d := range devs {
			// 20 s of event time per step, with jitter that reorders nearby events.
			tm := baseMs + int64(step)*20_000 + r.Int63n(15_000)
			if tm > latest[d.source] {
				latest[d.source] = tm
			}
			emit(d, tm)
			switch x := r.Float64(); {
			case x < 0.04 && latest[d.source]-baseMs > 10*60_000:
				// Late, inside the horizon (3-50 min behind the source).
				emit(d, latest[d.source]-(3*60_000+r.Int63n(47*60_000)))
			case x < 0.06 && latest[d.source]-baseMs > 70*60_000:
				// Late, beyond the horizon (65-68 min behind).
				emit(d, latest[d.source]-(65*60_000+r.Int63n(3*60_000)))
			case x < 0.10 && len(published) > 0:
				// Duplicate of an earlier event: half carry Nats-Msg-Id (JetStream
				// drops them), half do not (the processor must).
				dup := published[r.Intn(len(published))]
				if r.Intn(2) == 0 {
					dup.msgID = ""
				}
				out = append(out, dup)
			}
		}
	}
	// Every invalid example, each at a random place in the stream.
	for _, inv := range invalidExamples(t) {
		pos := r.Intn(len(out) + 1)
		out = append(out[:pos], append([]message{inv}, out[pos:]...)...)
	}
	return out
}

// invalidExamples reads schemas/examples/invalid: the reason is the file
// name's prefix, the subject comes from a .subject sidecar or the payload.
func invalidExamples(t *testing.T) []message {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "schemas", "examples", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid examples in %s: %v", dir, err)
	}
	var out []message
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		reason, _, _ := strings.Cut(filepath.Base(f), "--")
		subject := ""
		if b, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".subject"); err == nil {
			subject = strings.TrimSpace(string(b))
		} else {
			var env struct{ Kind, Area, Source string }
			if err := json.Unmarshal(data, &env); err != nil {
				t.Fatalf("%s: no .subject sidecar and the payload does not parse: %v", f, err)
			}
			subject = fmt.Sprintf("ioc.events.%s.%s.%s", env.Kind, env.Area, env.Source)
		}
		out = append(out, message{subject: subject, data: data, reason: reason})
	}
	return out
}

// windowKey and aggregate mirror window_agg's key and columns.
type windowKey struct {
	start                           int64 // seconds
	kind, typ, metric, area, source string
}

type aggregate struct {
	count                      uint64
	sum, min, max, first, last float64
	firstMs, lastMs            int64
	firstID, lastID            string
}

// truth is what ClickHouse must hold after the corpus is processed.
type truth struct {
	eventIDs map[string]bool // distinct accepted events (events FINAL)
	windows  map[windowKey]*aggregate
	rejected map[string]int // reason → count
	dropped  int
}

// groundTruth applies the contract's rules to the corpus in stream order,
// written independently of internal/window: dedup by id; a source's event
// whose 1-minute window ends at or before (latest time from that source −
// horizon) is stored raw but not aggregated.
func groundTruth(msgs []message) truth {
	tr := truth{eventIDs: map[string]bool{}, windows: map[windowKey]*aggregate{}, rejected: map[string]int{}}
	latest := map[string]int64{}
	for _, m := range msgs {
		if m.reason != "" {
			tr.rejected[m.reason]++
			continue
		}
		var raw struct {
			ID, Kind, Type, Source, Area, Time string
			Metrics                            map[string]float64
		}
		if err := json.Unmarshal(m.data, &raw); err != nil {
			panic(err)
		}
		if tr.eventIDs[raw.ID] {
			continue
		}
		tr.eventIDs[raw.ID] = true
		tm, _ := time.Parse(time.RFC3339Nano, raw.Time)
		ms := tm.UnixMilli()
		prev, seen := latest[raw.Source]
		start := ms - ((ms%windowMs)+windowMs)%windowMs
		if seen && start+windowMs <= prev-horizonMs {
			tr.dropped++
			continue
		}
		if !seen || ms > prev {
			latest[raw.Source] = ms
		}
		add := func(metric string, v float64) {
			k := windowKey{start / 1000, raw.Kind, raw.Type, metric, raw.Area, raw.Source}
			a := tr.windows[k]
			if a == nil {
				a = &aggregate{min: v, max: v, first: v, last: v, firstMs: ms, lastMs: ms, firstID: raw.ID, lastID: raw.ID}
				tr.windows[k] = a
			}
			a.count++
			a.sum += v
			a.min, a.max = math.Min(a.min, v), math.Max(a.max, v)
			if ms < a.firstMs || ms == a.firstMs && raw.ID < a.firstID {
				a.first, a.firstMs, a.firstID = v, ms, raw.ID
			}
			if ms > a.lastMs || ms == a.lastMs && raw.ID > a.lastID {
				a.last, a.lastMs, a.lastID = v, ms, raw.ID
			}
		}
		for name, v := range raw.Metrics {
			add(name, v)
		}
		add("events", 1)
	}
	return tr
}

func sortedKeys[K comparable](m map[K]int, less func(a, b K) bool) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	return keys
}
