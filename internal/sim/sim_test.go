package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/iocstream/iocstream/internal/city"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	testStart = time.Date(2026, 11, 22, 17, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	testNow   = time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
)

func newTestGen(t testing.TB, cfg Config) *Generator {
	t.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = testStart
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"normal", Config{Seed: 1}},
		{"all ratios", Config{Seed: 7, BadRatio: 0.2, DupRatio: 0.1, LateRatio: 0.1}},
		{"flood", Config{Seed: 3, Scenario: ScenarioFlood, BadRatio: 0.05}},
		{"pollution", Config{Seed: 3, Scenario: ScenarioPollution, DupRatio: 0.05}},
		{"congestion", Config{Seed: 3, Scenario: ScenarioCongestion, LateRatio: 0.3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newTestGen(t, tt.cfg), newTestGen(t, tt.cfg)
			for i := range 5000 {
				ma, mb := a.Next(), b.Next()
				if ma.Subject != mb.Subject || ma.MsgID != mb.MsgID || ma.Reason != mb.Reason ||
					ma.Dup != mb.Dup || !ma.EventTime.Equal(mb.EventTime) || !bytes.Equal(ma.Data, mb.Data) {
					t.Fatalf("message %d differs:\n%s %s\n%s %s", i, ma.Subject, ma.Data, mb.Subject, mb.Data)
				}
			}
			if !a.SimTime().Equal(b.SimTime()) {
				t.Fatalf("sim times differ: %v vs %v", a.SimTime(), b.SimTime())
			}
		})
	}
}

func TestRunsHaveDistinctIDs(t *testing.T) {
	base := Config{Seed: 1}
	other := []Config{
		{Seed: 2},
		{Seed: 1, Start: testStart.Add(time.Minute)},
		{Seed: 1, Scenario: ScenarioFlood},
	}
	ids := map[string]bool{}
	g := newTestGen(t, base)
	for range 1000 {
		ids[g.Next().MsgID] = true
	}
	for _, cfg := range other {
		g := newTestGen(t, cfg)
		for range 1000 {
			if id := g.Next().MsgID; ids[id] {
				t.Fatalf("config %+v reuses id %s of another run", cfg, id)
			}
		}
	}
}

func TestFirstTickIsStart(t *testing.T) {
	g := newTestGen(t, Config{Seed: 5})
	if !g.SimTime().Equal(testStart) {
		t.Fatalf("SimTime before Next = %v, want %v", g.SimTime(), testStart)
	}
	if m := g.Next(); !m.EventTime.Equal(testStart) {
		t.Fatalf("first event time = %v, want %v", m.EventTime, testStart)
	}
	prev := g.SimTime()
	for range 1000 {
		g.Next()
		if g.SimTime().Before(prev) {
			t.Fatalf("sim clock went backwards: %v after %v", g.SimTime(), prev)
		}
		prev = g.SimTime()
	}
}

func TestEveryReason(t *testing.T) {
	g := newTestGen(t, Config{Seed: 11, BadRatio: 0.3})
	counts := map[string]int{}
	// Every reason within the first 5000 messages; the defects themselves
	// are checked over more, to meet the rarer variants.
	for i := range 50000 {
		if i == 5000 {
			for _, r := range Reasons() {
				if counts[r] == 0 {
					t.Errorf("reason %s not produced in 5000 messages (counts %v)", r, counts)
				}
			}
		}
		m := g.Next()
		if m.Reason == "" {
			continue
		}
		counts[m.Reason]++
		if !m.EventTime.IsZero() {
			t.Errorf("%s: invalid message has an event time", m.Reason)
		}
		if err := checkRejected(m); err != nil {
			t.Errorf("%s: %v\n%s %.300s", m.Reason, err, m.Subject, m.Data)
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total < 14000 || total > 16000 {
		t.Errorf("%d bad messages out of 50000, want about 15000", total)
	}
}

// checkRejected verifies that m has the defect its Reason claims.
func checkRejected(m Message) error {
	switch m.Reason {
	case ReasonMalformedJSON:
		if json.Valid(m.Data) {
			return fmt.Errorf("payload is valid JSON")
		}
		if !utf8.Valid(m.Data) {
			return fmt.Errorf("payload is not valid UTF-8 either")
		}
		return nil
	case ReasonTooLarge:
		if len(m.Data) <= 64<<10 {
			return fmt.Errorf("payload has only %d bytes", len(m.Data))
		}
		return nil
	case ReasonInvalidUTF8:
		if utf8.Valid(m.Data) {
			return fmt.Errorf("payload is valid UTF-8")
		}
		return nil
	}
	if !json.Valid(m.Data) || !utf8.Valid(m.Data) {
		return fmt.Errorf("payload is not valid UTF-8 JSON")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &raw); err != nil {
		return err
	}
	var ev envelope
	_ = json.Unmarshal(m.Data, &ev) // may fail on the field with the wrong type
	tokens := strings.Split(m.Subject, ".")
	if len(tokens) != 5 || tokens[0] != "ioc" || tokens[1] != "events" {
		return fmt.Errorf("bad subject %q", m.Subject)
	}
	switch m.Reason {
	case ReasonMissingField:
		_, hasID := raw["id"]
		_, hasTime := raw["time"]
		if hasID && hasTime && checkRequired(ev) == nil {
			return fmt.Errorf("nothing is missing")
		}
	case ReasonInvalidField:
		if ev.ID != "" && idRE.MatchString(ev.ID) && len(ev.ID) <= 64 && ev.Time != "" && timeRE.MatchString(ev.Time) &&
			(ev.Location == nil || (math.Abs(ev.Location.Lat) <= 90 && math.Abs(ev.Location.Lon) <= 180)) &&
			json.Unmarshal(raw["metrics"], new(map[string]float64)) == nil &&
			json.Unmarshal(raw["attrs"], new(map[string]string)) == nil && attrsFit(ev.Attrs) {
			return fmt.Errorf("no invalid field found")
		}
	case ReasonUnknownKind:
		if knownTypes[ev.Kind] != nil {
			return fmt.Errorf("kind %q is known", ev.Kind)
		}
		if tokens[2] != ev.Kind {
			return fmt.Errorf("subject kind %q differs from payload %q", tokens[2], ev.Kind)
		}
	case ReasonUnknownType:
		if knownTypes[ev.Kind] == nil || knownTypes[ev.Kind][ev.Type] {
			return fmt.Errorf("type %s/%s is not an unknown type of a known kind", ev.Kind, ev.Type)
		}
	case ReasonSubjectMismatch:
		if tokens[2] == ev.Kind && tokens[3] == ev.Area && tokens[4] == ev.Source {
			return fmt.Errorf("subject matches payload")
		}
	case ReasonMetricOutOfRange:
		if err := checkRanges(ev); err == nil {
			return fmt.Errorf("all metrics in range")
		}
	case ReasonTimeInFuture:
		ts, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil {
			return err
		}
		if ts.Sub(testNow) < 30*time.Minute {
			return fmt.Errorf("time %s is not far enough ahead of %s", ts, testNow)
		}
	default:
		return fmt.Errorf("unknown reason")
	}
	return nil
}

type envelope struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Type     string `json:"type"`
	Source   string `json:"source"`
	Area     string `json:"area"`
	Time     string `json:"time"`
	Location *struct {
		Lat float64 `json:"lat"`
		Lon float64 `json:"lon"`
	} `json:"location"`
	Metrics map[string]float64 `json:"metrics"`
	Attrs   map[string]string  `json:"attrs"`
}

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	sourceRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	areaRE   = regexp.MustCompile(`^[a-z0-9-]{1,48}$`)
	nameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)
	timeRE   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+07:00$`)

	knownTypes = map[string]map[string]bool{
		"camera": {"vehicle_count": true, "person_count": true, "fire": true, "smoke": true, "accident": true,
			"road_flooding": true, "illegal_parking": true, "wrong_way": true, "crowd_gathering": true},
		"traffic":     {"flow": true},
		"environment": {"air_quality": true, "water_level": true, "rainfall": true, "noise": true, "weather": true},
		"feedback": {"moi-truong": true, "trat-tu-do-thi": true, "giao-thong": true, "ha-tang": true, "chieu-sang": true,
			"cap-thoat-nuoc": true, "an-ninh": true, "y-te": true, "khac": true},
	}
	metricRange = map[string][2]float64{
		"car": {0, math.Inf(1)}, "motorbike": {0, math.Inf(1)}, "truck": {0, math.Inf(1)}, "bus": {0, math.Inf(1)},
		"bicycle": {0, math.Inf(1)}, "peopleCount": {0, math.Inf(1)}, "confidence": {0, 1},
		"intensity": {0, math.Inf(1)}, "averageVehicleSpeed": {0, 250}, "occupancy": {0, 1}, "queueLength": {0, math.Inf(1)},
		"pm25": {0, 5000}, "pm10": {0, 5000}, "no2": {0, 5000}, "so2": {0, 5000}, "co": {0, 5000}, "o3": {0, 5000},
		"height": {-10, 50}, "precipitation": {0, 1000}, "LAeq": {0, 200}, "LAmax": {0, 200},
		"temperature": {-50, 70}, "relativeHumidity": {0, 1}, "windSpeed": {0, 100}, "resolutionMinutes": {0, math.Inf(1)},
	}
	integerMetrics = map[string]bool{"car": true, "motorbike": true, "truck": true, "bus": true, "bicycle": true, "peopleCount": true}
)

func attrsFit(attrs map[string]string) bool {
	for k, v := range attrs {
		if !nameRE.MatchString(k) || len(v) > 256 {
			return false
		}
	}
	return len(attrs) <= 32
}

func checkRequired(ev envelope) error {
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := ev.Metrics[n]; ok {
				return true
			}
		}
		return false
	}
	ok := true
	switch {
	case ev.Type == "vehicle_count":
		ok = has("car", "motorbike", "truck", "bus", "bicycle")
	case ev.Type == "person_count":
		ok = has("peopleCount")
	case ev.Kind == "camera":
		ok = has("confidence")
	case ev.Type == "flow":
		ok = has("intensity") && has("averageVehicleSpeed")
	case ev.Type == "air_quality":
		ok = has("pm25", "pm10", "no2", "so2", "co", "o3")
	case ev.Type == "water_level":
		ok = has("height")
	case ev.Type == "rainfall":
		ok = has("precipitation")
	case ev.Type == "noise":
		ok = has("LAeq")
	case ev.Type == "weather":
		ok = has("temperature", "relativeHumidity", "windSpeed")
	case ev.Kind == "feedback":
		ok = ev.Attrs["report_id"] != "" && ev.Attrs["status"] != ""
	}
	if !ok {
		return fmt.Errorf("required metric or attr missing for %s/%s", ev.Kind, ev.Type)
	}
	return nil
}

func checkRanges(ev envelope) error {
	for name, v := range ev.Metrics {
		r, ok := metricRange[name]
		if !ok {
			return fmt.Errorf("unexpected metric %s", name)
		}
		if v < r[0] || v > r[1] {
			return fmt.Errorf("metric %s = %v outside [%v, %v]", name, v, r[0], r[1])
		}
		if integerMetrics[name] && v != math.Trunc(v) {
			return fmt.Errorf("metric %s = %v is not an integer", name, v)
		}
	}
	return nil
}

// checkValid verifies a message that the processor must accept.
func checkValid(m Message) error {
	if !utf8.Valid(m.Data) || !json.Valid(m.Data) || len(m.Data) > 64<<10 {
		return fmt.Errorf("not a valid UTF-8 JSON document under 64 KiB")
	}
	var ev envelope
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return err
	}
	if !idRE.MatchString(ev.ID) {
		return fmt.Errorf("bad id %q", ev.ID)
	}
	if !m.Dup && m.MsgID != ev.ID {
		return fmt.Errorf("MsgID %q differs from id %q", m.MsgID, ev.ID)
	}
	if m.Dup && m.MsgID != "" && m.MsgID != ev.ID {
		return fmt.Errorf("duplicate MsgID %q differs from id %q", m.MsgID, ev.ID)
	}
	if knownTypes[ev.Kind] == nil || !knownTypes[ev.Kind][ev.Type] {
		return fmt.Errorf("unknown kind/type %s/%s", ev.Kind, ev.Type)
	}
	if !sourceRE.MatchString(ev.Source) || !areaRE.MatchString(ev.Area) || city.Index(ev.Area) < 0 {
		return fmt.Errorf("bad source %q or area %q", ev.Source, ev.Area)
	}
	if want := "ioc.events." + ev.Kind + "." + ev.Area + "." + ev.Source; m.Subject != want {
		return fmt.Errorf("subject %q, want %q", m.Subject, want)
	}
	if !timeRE.MatchString(ev.Time) {
		return fmt.Errorf("time %q not in the expected format", ev.Time)
	}
	ts, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err != nil {
		return err
	}
	if !ts.Equal(m.EventTime) {
		return fmt.Errorf("time %s differs from EventTime %s", ts, m.EventTime)
	}
	if ev.Location == nil || math.Abs(ev.Location.Lat-16.4) > 0.5 || math.Abs(ev.Location.Lon-107.6) > 0.6 {
		return fmt.Errorf("location %+v is not in Huế", ev.Location)
	}
	if ev.Metrics == nil || len(ev.Metrics) > 32 {
		return fmt.Errorf("metrics missing or too many")
	}
	for name := range ev.Metrics {
		if !nameRE.MatchString(name) {
			return fmt.Errorf("bad metric name %q", name)
		}
	}
	if !attrsFit(ev.Attrs) {
		return fmt.Errorf("attrs do not fit: %v", ev.Attrs)
	}
	if ev.Kind == "feedback" {
		switch ev.Attrs["status"] {
		case "received", "assigned", "processing", "resolved", "rejected":
		default:
			return fmt.Errorf("bad status %q", ev.Attrs["status"])
		}
		switch ev.Attrs["channel"] {
		case "app", "hotline", "web", "zalo":
		default:
			return fmt.Errorf("bad channel %q", ev.Attrs["channel"])
		}
	}
	if err := checkRequired(ev); err != nil {
		return err
	}
	return checkRanges(ev)
}

func TestValidMessages(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(string(sc), func(t *testing.T) {
			t.Parallel()
			g := newTestGen(t, Config{Seed: 2, Scenario: sc, BadRatio: 0.1, DupRatio: 0.1, LateRatio: 0.1})
			types := map[string]int{}
			// Long enough to cover an episode, the slow sensors and a
			// few citizen reports.
			end := testStart.Add(8 * time.Hour)
			for i := 0; g.SimTime().Before(end); i++ {
				m := g.Next()
				if m.Reason != "" {
					continue
				}
				// Vehicle counts are 90 % of the traffic: a sample of them
				// keeps the test fast.
				if i > 20000 && i%16 != 0 && bytes.Contains(m.Data, []byte(`"type":"vehicle_count"`)) {
					continue
				}
				if err := checkValid(m); err != nil {
					t.Fatalf("%v\n%s %s", err, m.Subject, m.Data)
				}
				var ev envelope
				_ = json.Unmarshal(m.Data, &ev)
				types[ev.Kind+"/"+ev.Type]++
			}
			for _, want := range []string{"camera/vehicle_count", "camera/person_count", "traffic/flow",
				"environment/air_quality", "environment/water_level", "environment/rainfall", "environment/noise",
				"environment/weather"} {
				if types[want] == 0 {
					t.Errorf("no %s events", want)
				}
			}
			var detections, feedback int
			for k, n := range types {
				if strings.HasPrefix(k, "feedback/") {
					feedback += n
				} else if strings.HasPrefix(k, "camera/") && k != "camera/vehicle_count" && k != "camera/person_count" {
					detections += n
				}
			}
			if detections == 0 || feedback == 0 {
				t.Errorf("%d AI detections and %d feedback events in 8 h", detections, feedback)
			}
		})
	}
}

// series runs g until the simulated clock passes d after the start and
// returns the values of metric from source, valid first publications only.
func series(g *Generator, d time.Duration, source, metric string) []float64 {
	var out []float64
	end := testStart.Add(d)
	for g.SimTime().Before(end) {
		m := g.Next()
		if m.Reason != "" || m.Dup || !strings.HasSuffix(m.Subject, "."+source) {
			continue
		}
		var ev envelope
		if json.Unmarshal(m.Data, &ev) != nil {
			continue
		}
		if v, ok := ev.Metrics[metric]; ok {
			out = append(out, v)
		}
	}
	return out
}

func TestFlood(t *testing.T) {
	tests := []struct {
		source string
		levels []float64 // BĐ1, BĐ2, BĐ3
	}{
		{"wl-kim-long", []float64{1.0, 2.0, 3.5}},
		{"wl-phu-oc", []float64{1.5, 3.0, 4.5}},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			g := newTestGen(t, Config{Seed: 4, Scenario: ScenarioFlood})
			heights := series(g, 8*time.Hour, tt.source, "height")
			if len(heights) < 400 {
				t.Fatalf("only %d readings in 8 h", len(heights))
			}
			if heights[0] >= tt.levels[0] {
				t.Fatalf("starts at %v, already above BĐ1", heights[0])
			}
			// Each alarm level must be crossed in order, then the river
			// must fall back below BĐ1.
			next := 0
			fell := false
			for _, h := range heights {
				if next < len(tt.levels) && h >= tt.levels[next] {
					next++
				}
				if next == len(tt.levels) && h < tt.levels[0] {
					fell = true
				}
			}
			if next < len(tt.levels) || !fell {
				t.Fatalf("crossed %d of %v, fell back below BĐ1: %v (peak %v)", next, tt.levels, fell, slicesMax(heights))
			}
		})
	}
	t.Run("rain", func(t *testing.T) {
		g := newTestGen(t, Config{Seed: 4, Scenario: ScenarioFlood})
		sum := 0.0
		for _, p := range series(g, 4*time.Hour, "rg-thuan-hoa", "precipitation") {
			sum += p
		}
		if sum < 100 {
			t.Fatalf("%v mm of rain in the first 4 h of a flood", sum)
		}
	})
}

func TestPollution(t *testing.T) {
	g := newTestGen(t, Config{Seed: 4, Scenario: ScenarioPollution})
	pm := series(g, 8*time.Hour, "aq-an-cuu", "pm25")
	high := 0
	for _, v := range pm {
		if v >= 150 {
			high++
		}
	}
	if high < 120 { // one reading a minute: two hours
		t.Fatalf("PM2.5 ≥ 150 for only %d minutes (peak %v)", high, slicesMax(pm))
	}
	if p := slicesMax(pm); p > 300 {
		t.Fatalf("PM2.5 peak %v is implausibly high", p)
	}
	normal := series(newTestGen(t, Config{Seed: 4}), 8*time.Hour, "aq-an-cuu", "pm25")
	if p := slicesMax(normal); p > 80 {
		t.Fatalf("normal PM2.5 peaks at %v", p)
	}
}

func TestCongestion(t *testing.T) {
	g := newTestGen(t, Config{Seed: 4, Scenario: ScenarioCongestion})
	speeds := series(g, 2*time.Hour, "td-le-loi-1", "averageVehicleSpeed")
	run, longest := 0, 0
	for _, v := range speeds {
		if v <= 16 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest*30 < 20*60 { // a reading every 30 s
		t.Fatalf("speed ≤ 16 km/h for only %d consecutive readings", longest)
	}
}

func TestDuplicates(t *testing.T) {
	g := newTestGen(t, Config{Seed: 9, DupRatio: 0.2, BadRatio: 0.1})
	sent := map[string][]byte{}
	var withID, withoutID int
	for range 5000 {
		m := g.Next()
		if !m.Dup {
			if m.Reason == "" {
				sent[m.MsgID] = m.Data
			}
			continue
		}
		if m.Reason != "" {
			t.Fatalf("duplicate with reason %s", m.Reason)
		}
		var ev envelope
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		orig, ok := sent[ev.ID]
		if !ok || !bytes.Equal(orig, m.Data) {
			t.Fatalf("duplicate of id %s does not repeat an earlier valid message", ev.ID)
		}
		if m.MsgID == "" {
			withoutID++
		} else {
			withID++
		}
	}
	if withID < 300 || withoutID < 300 {
		t.Fatalf("%d duplicates with Nats-Msg-Id, %d without; want about 500 each", withID, withoutID)
	}
}

func TestLate(t *testing.T) {
	g := newTestGen(t, Config{Seed: 9, LateRatio: 0.2})
	var late, tooLate int
	for range 5000 {
		m := g.Next()
		lag := g.SimTime().Sub(m.EventTime)
		switch {
		case lag < 0:
			t.Fatalf("event time %v after the clock %v", m.EventTime, g.SimTime())
		case lag >= 2*time.Hour && lag <= 3*time.Hour:
			tooLate++
		case lag >= time.Second && lag <= 5*time.Minute:
			late++
		case lag > 0:
			t.Fatalf("lag %v outside the documented ranges", lag)
		}
	}
	if late < 700 || tooLate < 50 || tooLate > 200 {
		t.Fatalf("%d late, %d beyond the horizon; want about 900 and 100", late, tooLate)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no start", Config{Seed: 1}},
		{"unknown scenario", Config{Start: testStart, Scenario: "earthquake"}},
		{"negative ratio", Config{Start: testStart, BadRatio: -0.1}},
		{"NaN ratio", Config{Start: testStart, LateRatio: math.NaN()}},
		{"ratios above 1", Config{Start: testStart, BadRatio: 0.6, DupRatio: 0.6}},
		{"negative speedup", Config{Start: testStart, Speedup: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestAppendTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ict := time.FixedZone("", 7*3600)
	for range 10000 {
		ms := rng.Int64N(8000 * 365 * msPerDay) // 1970 to ~9970
		want := time.UnixMilli(ms).In(ict).Format("2006-01-02T15:04:05.000-07:00")
		if got := string(appendTime(nil, ms)); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	}
}

func slicesMax(s []float64) float64 {
	m := math.Inf(-1)
	for _, v := range s {
		m = math.Max(m, v)
	}
	return m
}

func BenchmarkNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"valid", Config{Seed: 1}},
		{"mixed", Config{Seed: 1, DupRatio: 0.05, LateRatio: 0.05, BadRatio: 0.01}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := newTestGen(b, bc.cfg)
			var n int
			b.ReportAllocs()
			for b.Loop() {
				n += len(g.Next().Data)
			}
			b.ReportMetric(float64(n)/float64(b.N), "bytes/msg")
		})
	}
}
