// Package sim generates the event traffic of a simulated Huế city: sensors,
// cameras and citizen reports, optionally mixed with invalid, duplicated and
// late messages. It is deterministic for a given Config and does no I/O, so
// tests and benchmarks can use it as well as the iocsim command.
package sim

import (
	"errors"
	"fmt"
	"github.com/iocstream/iocstream/internal/city"
	"github.com/iocstream/iocstream/internal/subject"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Config drives a Generator.
type Config struct {
	Seed int64
	// Start is the simulated clock's start: the event time of the first
	// tick. Event times have millisecond precision.
	Start time.Time
	// Speedup is simulated seconds per wall second. Only the command uses it;
	// the generator's clock advances with every call to Next.
	Speedup  float64
	Scenario Scenario
	// BadRatio is the fraction of messages that are rejected by the
	// processor, spread over every rejection reason.
	BadRatio float64
	// DupRatio is the fraction of messages that re-publish an earlier valid
	// message byte for byte; half of them carry no Nats-Msg-Id header.
	DupRatio float64
	// LateRatio is the fraction of valid events whose event time lies in the
	// past: 1 s to 5 min, or for one in ten of them 2 to 3 h (beyond the
	// default 1 h correction horizon).
	LateRatio float64
	// ExtraCameras adds vehicle-count cameras (every fourth also counting
	// people) spread over the 40 units, to Huế's 40: a city-wide camera
	// network has hundreds of sources.
	ExtraCameras int
	// Now is the real clock, used only for time_in_future payloads. Nil means
	// time.Now.
	Now func() time.Time
}

// Message is one message to publish.
type Message struct {
	// Subject is ioc.events.<kind>.<area>.<source>.
	Subject string
	// Data is the payload. A duplicate shares it with the original
	// message, so it must not be modified.
	Data []byte
	// MsgID is the Nats-Msg-Id header value; "" means publish without it.
	MsgID string
	// Reason is the rejection reason the processor should report, "" for a
	// valid event.
	Reason string
	// Dup marks a re-publication of an earlier message.
	Dup bool
	// EventTime is the event time of a valid event, zero for invalid ones.
	EventTime time.Time
}

// Rejection reason codes of the contract (section 2).
const (
	ReasonMalformedJSON    = "malformed_json"
	ReasonTooLarge         = "too_large"
	ReasonInvalidUTF8      = "invalid_utf8"
	ReasonMissingField     = "missing_field"
	ReasonInvalidField     = "invalid_field"
	ReasonUnknownKind      = "unknown_kind"
	ReasonUnknownType      = "unknown_type"
	ReasonSubjectMismatch  = "subject_mismatch"
	ReasonMetricOutOfRange = "metric_out_of_range"
	ReasonTimeInFuture     = "time_in_future"
)

var allReasons = [...]string{
	ReasonMalformedJSON, ReasonTooLarge, ReasonInvalidUTF8, ReasonMissingField, ReasonInvalidField,
	ReasonUnknownKind, ReasonUnknownType, ReasonSubjectMismatch, ReasonMetricOutOfRange, ReasonTimeInFuture,
}

// Reasons lists every rejection reason the generator produces.
func Reasons() []string { return append([]string(nil), allReasons[:]...) }

const (
	feedbackSource = "hue-s"
	// historySize bounds the messages a duplicate may repeat: about two
	// simulated minutes, well inside the correction horizon.
	historySize             = 1024
	detectionMeanIntervalMs = 3 * minuteMs
	reportMeanIntervalMs    = 6 * minuteMs
)

type emitterKind uint8

const (
	emitDevice emitterKind = iota
	emitDetection
	emitNewReport
	emitReportUpdate
)

// emitter is an entry of the schedule: a periodic device, one of the
// Poisson processes (AI detections, new citizen reports) or the next status
// change of an open report.
type emitter struct {
	at   int64 // Unix ms
	what emitterKind
	dev  *device
	rep  *report
}

type sentMessage struct {
	subject string
	data    []byte
	id      string
	at      time.Time
}

// Generator produces the message sequence of one simulation run. It is not
// safe for concurrent use.
type Generator struct {
	cfg    Config
	rng    *rand.Rand
	now    func() time.Time
	zone   *time.Location
	start  int64 // Unix ms
	clock  int64 // Unix ms of the current tick
	runKey uint64
	runTag string
	ids    uint64
	nRep   uint64

	episodeStart int64
	queue        []*emitter
	cameras      []*device
	nominal      float64

	fbSubjects  [city.Count]string
	areaWeights []int

	ev  event
	buf []byte

	history  [historySize]sentMessage
	histLen  int
	histNext int
}

// New validates cfg and builds the simulated city.
func New(cfg Config) (*Generator, error) {
	if cfg.Scenario == "" {
		cfg.Scenario = ScenarioNormal
	}
	switch cfg.Scenario {
	case ScenarioNormal, ScenarioFlood, ScenarioPollution, ScenarioCongestion:
	default:
		return nil, fmt.Errorf("sim: unknown scenario %q (want normal, flood, pollution or congestion)", cfg.Scenario)
	}
	if cfg.Start.IsZero() {
		return nil, errors.New("sim: Start must be set")
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"BadRatio", cfg.BadRatio}, {"DupRatio", cfg.DupRatio}, {"LateRatio", cfg.LateRatio}} {
		if !(r.v >= 0 && r.v <= 1) {
			return nil, fmt.Errorf("sim: %s %v is not within [0, 1]", r.name, r.v)
		}
	}
	if cfg.BadRatio+cfg.DupRatio > 1 {
		return nil, fmt.Errorf("sim: BadRatio + DupRatio = %v exceeds 1", cfg.BadRatio+cfg.DupRatio)
	}
	if math.IsNaN(cfg.Speedup) || cfg.Speedup < 0 {
		return nil, fmt.Errorf("sim: Speedup %v must not be negative", cfg.Speedup)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	g := &Generator{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_1cc0_0e5e_17a1)),
		now:   cfg.Now,
		zone:  time.FixedZone("ICT", ictOffsetMs/1000),
		start: cfg.Start.UnixMilli(),
		buf:   make([]byte, 0, 1024),
	}
	g.clock = g.start
	g.episodeStart = g.start + episodeDelay(cfg.Scenario)
	g.runKey = runKey(cfg)
	g.runTag = strconv.FormatUint(g.runKey>>40, 16)

	for i := range city.Count {
		g.fbSubjects[i] = subject.Event("feedback", city.At(i).Slug, feedbackSource)
		// Citizens of the central wards use Hue-S most.
		w := 1
		switch {
		case i < 7:
			w = 6
		case i < 21:
			w = 2
		}
		g.areaWeights = append(g.areaWeights, w)
	}

	devices, cameras := population(g.rng, cfg.Scenario, cfg.ExtraCameras)
	g.cameras = cameras
	for _, d := range devices {
		g.push(&emitter{at: g.start + g.rng.Int64N(d.periodMs), what: emitDevice, dev: d})
		g.nominal += 1000 / float64(d.periodMs)
	}
	// Start is the first tick by definition.
	g.queue[0].at = g.start
	g.push(&emitter{at: g.start + g.expMs(detectionMeanIntervalMs), what: emitDetection})
	g.push(&emitter{at: g.start + g.expMs(reportMeanIntervalMs), what: emitNewReport})
	g.nominal += 1000 / float64(detectionMeanIntervalMs)
	// A report produces about 3.5 events (received, assigned, processing,
	// resolved, minus the few rejected early).
	g.nominal += 3.5 * 1000 / float64(reportMeanIntervalMs)
	return g, nil
}

// runKey condenses everything that shapes the run, so that two runs with
// different starts or settings never produce the same event ids (which the
// processor would deduplicate away).
func runKey(cfg Config) uint64 {
	k := mix64(uint64(cfg.Seed))
	k = mix64(k ^ uint64(cfg.Start.UnixMilli()))
	for i := 0; i < len(cfg.Scenario); i++ {
		k = mix64(k ^ uint64(cfg.Scenario[i]))
	}
	for _, r := range []float64{cfg.BadRatio, cfg.DupRatio, cfg.LateRatio} {
		k = mix64(k ^ math.Float64bits(r))
	}
	return k
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// SimTime returns the simulated clock: the time of the latest tick.
func (g *Generator) SimTime() time.Time { return time.UnixMilli(g.clock).In(g.zone) }

// NextTime returns the simulated time of the next scheduled tick, which lets
// a caller pace the simulation against a wall clock. Duplicates are not
// scheduled and may come before it.
func (g *Generator) NextTime() time.Time { return time.UnixMilli(g.queue[0].at).In(g.zone) }

// NominalRate is the average number of events per simulated second, which
// lets a caller estimate how much simulated time a number of messages spans.
func (g *Generator) NominalRate() float64 { return g.nominal }

// Next returns the next message.
func (g *Generator) Next() Message {
	r := g.rng.Float64()
	switch {
	case r < g.cfg.DupRatio:
		if g.histLen > 0 {
			return g.duplicate()
		}
		g.tick()
		return g.valid()
	case r < g.cfg.DupRatio+g.cfg.BadRatio:
		g.tick()
		return g.invalid()
	}
	g.tick()
	return g.valid()
}

func (g *Generator) valid() Message {
	e := &g.ev
	if g.cfg.LateRatio > 0 && g.rng.Float64() < g.cfg.LateRatio {
		if g.rng.IntN(10) == 0 {
			e.timeMs -= 2*hourMs + g.rng.Int64N(hourMs)
		} else {
			e.timeMs -= 1000 + g.rng.Int64N(5*minuteMs-1000)
		}
	}
	m := Message{
		Subject:   e.subject,
		Data:      g.encode(),
		MsgID:     e.id,
		EventTime: time.UnixMilli(e.timeMs).In(g.zone),
	}
	g.history[g.histNext] = sentMessage{subject: m.Subject, data: m.Data, id: m.MsgID, at: m.EventTime}
	g.histNext = (g.histNext + 1) % historySize
	g.histLen = min(g.histLen+1, historySize)
	return m
}

// duplicate re-publishes one of the recent valid messages: recent, so that
// the processor still holds its id within the correction horizon.
func (g *Generator) duplicate() Message {
	s := g.history[(g.histNext-1-g.rng.IntN(g.histLen)+historySize)%historySize]
	m := Message{Subject: s.subject, Data: s.data, Dup: true, EventTime: s.at}
	if g.rng.IntN(2) == 0 {
		m.MsgID = s.id
	}
	return m
}

// encode returns the scratch event's JSON in a buffer of its own: callers
// keep messages (async publishing, the duplicate history).
func (g *Generator) encode() []byte {
	g.buf = g.ev.appendJSON(g.buf[:0])
	return append([]byte(nil), g.buf...)
}

func (g *Generator) newID() string {
	g.ids++
	var b [40]byte
	h := mix64(g.runKey + g.ids*0x9e3779b97f4a7c15)
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[h&15]
		h >>= 4
	}
	b[16] = '-'
	return string(strconv.AppendUint(b[:17], g.ids, 10))
}

// expMs draws an exponential interval (a Poisson process), at least 1 ms.
func (g *Generator) expMs(mean float64) int64 {
	return max(1, int64(g.rng.ExpFloat64()*mean))
}

// episode is how long the current scenario episode has been running; a
// value beyond every episode's length when none is.
func (g *Generator) episode(leadMs int64) int64 {
	return floorMod(g.clock-g.episodeStart+leadMs, 24*hourMs)
}

// begin resets the scratch event for a new reading at the current tick.
func (g *Generator) begin(subject, kind, typ, source, area string, lat, lon float64) *event {
	e := &g.ev
	*e = event{
		subject: subject,
		id:      g.newID(),
		kind:    kind,
		typ:     typ,
		source:  source,
		area:    area,
		timeMs:  g.clock,
		hasLoc:  true,
		lat:     lat,
		lon:     lon,
	}
	return e
}

// tick advances the clock to the next scheduled emitter and fills the
// scratch event with its reading.
func (g *Generator) tick() {
	em := g.queue[0]
	g.clock = em.at
	switch em.what {
	case emitDevice:
		d := em.dev
		e := g.begin(d.subject, d.kind, d.typ, d.source, d.area, d.lat, d.lon)
		e.na = copy(e.attrs[:], d.attrs)
		g.read(d, e)
		// A ±1 % jitter keeps devices from marching in lockstep.
		p := d.periodMs
		em.at += p + g.rng.Int64N(p/50+1) - p/100
		g.fixTop()
	case emitDetection:
		g.detection()
		em.at += g.expMs(detectionMeanIntervalMs)
		g.fixTop()
	case emitNewReport:
		rep := g.newReport()
		// Fewer reports at night.
		mean := float64(reportMeanIntervalMs)
		if h := localHour(g.clock); h < 6 || h >= 22 {
			mean *= 4
		}
		em.at += g.expMs(mean)
		g.fixTop()
		g.push(&rep.em)
	case emitReportUpdate:
		if g.advanceReport(em.rep) {
			g.fixTop()
		} else {
			g.popTop()
		}
	}
}

func (g *Generator) read(d *device, e *event) {
	h := localHour(g.clock)
	rng := g.rng
	switch d.class {
	case classAirQuality:
		d.walk = 0.95*d.walk + 0.03*rng.NormFloat64()
		tf := interp24(&trafficProfile, h)
		pm25 := d.base * interp24(&pmProfile, h) * math.Exp(d.walk)
		pm10ratio := 1.45 + 0.2*rng.Float64()
		co := 450 + 900*tf + 120*rng.Float64()
		if g.cfg.Scenario == ScenarioPollution {
			s := pollutionShape(g.episode(0))
			if d.special {
				pm25 += (d.peak*math.Exp(d.walk) - pm25) * s
				pm10ratio -= 0.2 * s // smoke is mostly fine particles
				co += 2500 * s
			} else {
				pm25 *= 1 + 0.3*s
			}
		}
		e.addMetric("pm25", pm25, 1)
		e.addMetric("pm10", pm25*pm10ratio, 1)
		e.addMetric("no2", (12+30*tf)*math.Exp(d.walk/2), 1)
		e.addMetric("so2", 4+6*rng.Float64(), 1)
		e.addMetric("co", co, 0)
		e.addMetric("o3", 25+60*daylight(h)+5*rng.Float64(), 1)

	case classWaterLevel:
		d.walk = 0.98*d.walk + 0.004*rng.NormFloat64()
		// The Hương is slightly tidal at Huế (period ≈ 12.42 h).
		level := d.base + d.walk + 0.03*math.Sin(2*math.Pi*float64(g.clock)/(12.42*hourMs))
		if g.cfg.Scenario == ScenarioFlood {
			level += (d.peak - d.base) * floodShape(g.episode(d.leadMs))
		}
		e.addMetric("height", level, 2)

	case classRainfall:
		p := 0.0
		if d.showerLeftMs > 0 {
			p = d.showerIntensity * (0.4 + 1.2*rng.Float64())
			d.showerLeftMs -= d.periodMs
		} else if rng.Float64() < 0.015 {
			d.showerLeftMs = int64(20+rng.IntN(100)) * minuteMs
			d.showerIntensity = 0.2 + 2.5*rng.Float64()
		}
		if g.cfg.Scenario == ScenarioFlood {
			p += d.base * floodRain(g.episode(0), rng.Float64())
		}
		e.addMetric("precipitation", p, 1)

	case classNoise:
		tf := interp24(&trafficProfile, h)
		laeq := d.base - 12 + 12*math.Sqrt(tf) + 1.5*rng.NormFloat64()
		e.addMetric("LAeq", laeq, 1)
		e.addMetric("LAmax", laeq+8+12*rng.Float64(), 1)

	case classWeather:
		d.walk = 0.97*d.walk + 0.05*rng.NormFloat64()
		s := math.Sin(2 * math.Pi * (h - 9) / 24)
		temp := 24.5 + d.base + 5*s + d.walk
		rh := clamp(0.80-0.15*s+0.02*rng.NormFloat64(), 0.3, 1)
		wind := 1 + 3*rng.Float64()
		if g.cfg.Scenario == ScenarioFlood && floodActive(g.episode(0)) {
			temp -= 3
			rh = 0.94 + 0.05*rng.Float64()
			wind = 7 + 8*rng.Float64()
		}
		e.addMetric("temperature", temp, 1)
		e.addMetric("relativeHumidity", rh, 2)
		e.addMetric("windSpeed", wind, 1)

	case classTrafficFlow:
		d.walk = 0.9*d.walk + 0.05*rng.NormFloat64()
		tf := interp24(&trafficProfile, h) * math.Exp(d.walk)
		intensity := d.base * tf * (0.85 + 0.3*rng.Float64())
		speed := clamp(d.free*(1-0.4*tf)+3*rng.NormFloat64(), 18, d.free+10)
		occ := clamp(0.02+0.22*tf+0.02*rng.NormFloat64(), 0.01, 0.6)
		if d.special {
			if c := congestionShape(g.episode(0)); c > 0 {
				speed = speed*(1-c) + (4+11*rng.Float64())*c
				occ = occ*(1-c) + (0.35+0.3*rng.Float64())*c
				intensity = intensity*(1-c) + (4+8*rng.Float64())*c
			}
		}
		e.addMetric("intensity", intensity, 0)
		e.addMetric("averageVehicleSpeed", speed, 1)
		e.addMetric("occupancy", occ, 2)

	case classVehicleCount:
		// Motorbikes dominate Huế's traffic, roughly four to one over cars.
		tf := interp24(&trafficProfile, h) * d.base
		e.addMetric("car", g.count(2.5*tf), 0)
		e.addMetric("motorbike", g.count(12*tf), 0)
		e.addMetric("truck", g.count(0.3*tf), 0)
		e.addMetric("bus", g.count(0.15*tf), 0)
		e.addMetric("bicycle", g.count(1.0*tf), 0)

	case classPersonCount:
		e.addMetric("peopleCount", g.count(d.base*interp24(&crowdProfile, h)), 0)
	}
}

// count draws a non-negative integer with the given mean: a Bernoulli trial
// for small means, a normal approximation of the Poisson distribution
// otherwise. Exact Poisson sampling would cost more than it adds here.
func (g *Generator) count(mean float64) float64 {
	if mean < 1 {
		if g.rng.Float64() < mean {
			return 1
		}
		return 0
	}
	return math.Max(0, math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64()))
}

var detectionTypes = [...]struct {
	typ           string
	weight, flood int
}{
	{"illegal_parking", 35, 20},
	{"wrong_way", 25, 10},
	{"crowd_gathering", 15, 5},
	{"accident", 10, 10},
	{"road_flooding", 7, 120},
	{"smoke", 5, 2},
	{"fire", 3, 1},
}

func (g *Generator) detection() {
	flooding := g.cfg.Scenario == ScenarioFlood && floodActive(g.episode(0))
	total := 0
	for _, t := range detectionTypes {
		if flooding {
			total += t.flood
		} else {
			total += t.weight
		}
	}
	pick := g.rng.IntN(total)
	typ := detectionTypes[0].typ
	for _, t := range detectionTypes {
		w := t.weight
		if flooding {
			w = t.flood
		}
		if pick < w {
			typ = t.typ
			break
		}
		pick -= w
	}
	cam := g.cameras[g.rng.IntN(len(g.cameras))]
	e := g.begin(cam.subject, cam.kind, typ, cam.source, cam.area, cam.lat, cam.lon)
	// Detectors report only what clears their threshold, so confidences
	// cluster towards the top of [0.5, 1].
	e.addMetric("confidence", 0.5+0.5*math.Sqrt(g.rng.Float64()), 2)
}

func pickWeighted(rng *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	pick := rng.IntN(total)
	for i, w := range weights {
		if pick < w {
			return i
		}
		pick -= w
	}
	return len(weights) - 1
}

// Heap of emitters ordered by time. Hand-written rather than container/heap
// to avoid interface calls on the hot path.

func (g *Generator) push(em *emitter) {
	g.queue = append(g.queue, em)
	q := g.queue
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if q[p].at <= q[i].at {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (g *Generator) fixTop() {
	q := g.queue
	i := 0
	for {
		l := 2*i + 1
		if l >= len(q) {
			return
		}
		c := l
		if r := l + 1; r < len(q) && q[r].at < q[l].at {
			c = r
		}
		if q[i].at <= q[c].at {
			return
		}
		q[i], q[c] = q[c], q[i]
		i = c
	}
}

func (g *Generator) popTop() {
	last := len(g.queue) - 1
	g.queue[0] = g.queue[last]
	g.queue[last] = nil
	g.queue = g.queue[:last]
	g.fixTop()
}
