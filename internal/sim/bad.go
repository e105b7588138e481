package sim

import (
	"github.com/iocstream/iocstream/internal/city"
	"strings"

	"github.com/iocstream/iocstream/internal/subject"
)

// invalid turns the scratch event (a valid reading just produced by tick)
// into a message the processor must reject, with exactly one defect so that
// the expected reason is unambiguous. Defects never touch kind, area or
// source unless the reason is about them, since a processor may check the
// subject before other fields.
func (g *Generator) invalid() Message {
	e := &g.ev
	rng := g.rng
	m := Message{Subject: e.subject, MsgID: e.id}
	m.Reason = allReasons[rng.IntN(len(allReasons))]

	switch m.Reason {
	case ReasonMalformedJSON:
		switch rng.IntN(3) {
		case 0: // truncated: any proper prefix of an object is invalid
			g.buf = e.appendJSON(g.buf[:0])
			cut := 1 + rng.IntN(len(g.buf)-1)
			// Cut between characters: a split UTF-8 sequence would make
			// this an invalid_utf8 case.
			for g.buf[cut]&0xc0 == 0x80 {
				cut--
			}
			g.buf = g.buf[:cut]
			m.Data = append([]byte(nil), g.buf...)
			return m
		case 1: // JavaScript's NaN is not JSON
			if e.nm == 0 {
				e.addMetric("resolutionMinutes", 0, 0)
			}
			e.metrics[rng.IntN(e.nm)].raw = "NaN"
		case 2: // trailing comma
			g.buf = e.appendJSON(g.buf[:0])
			g.buf = append(g.buf[:len(g.buf)-1], ',', '}')
			m.Data = append([]byte(nil), g.buf...)
			return m
		}

	case ReasonTooLarge:
		// attrs values are capped at 256 bytes, so the bulk goes into an
		// unknown top-level field, which would otherwise be ignored.
		e.padding = 64<<10 + rng.IntN(8<<10)

	case ReasonInvalidUTF8:
		bad := [...]string{
			"\xff\xfe",     // bytes that never occur in UTF-8
			"\xc3\x28",     // truncated two-byte sequence
			"\xed\xa0\x80", // encoded surrogate
			"\xc0\xaf",     // overlong encoding of '/'
		}
		e.addAttr("note", "ghi chú "+bad[rng.IntN(len(bad))])

	case ReasonMissingField:
		switch rng.IntN(3) {
		case 0:
			e.omitID = true
		case 1:
			e.omitTime = true
		default:
			g.dropRequired(e)
		}

	case ReasonInvalidField:
		g.breakField(e)

	case ReasonUnknownKind:
		kinds := [...]string{"satellite", "drone", "parking", "smart_meter"}
		e.kind = kinds[rng.IntN(len(kinds))]
		m.Subject = subject.Event(e.kind, e.area, e.source)

	case ReasonUnknownType:
		var types []string
		switch e.kind {
		case "camera":
			types = []string{"license_plate", "no_helmet", "red_light"}
		case "traffic":
			types = []string{"parking_occupancy", "signal_phase"}
		case "environment":
			types = []string{"radiation", "soil_moisture", "water_quality"}
		default:
			types = []string{"khen-thuong", "du-lich"}
		}
		e.typ = types[rng.IntN(len(types))]

	case ReasonSubjectMismatch:
		kind, area, source := e.kind, e.area, e.source
		switch rng.IntN(3) {
		case 0:
			area = city.At((city.Index(area) + 1 + rng.IntN(city.Count-1)) % city.Count).Slug
		case 1:
			source += "-x"
		default:
			kinds := [...]string{"camera", "traffic", "environment", "feedback"}
			for kind == e.kind {
				kind = kinds[rng.IntN(len(kinds))]
			}
		}
		m.Subject = subject.Event(kind, area, source)

	case ReasonMetricOutOfRange:
		g.outOfRange(e)

	case ReasonTimeInFuture:
		// Well beyond the default 5 min skew, whatever the simulated clock.
		e.timeMs = g.now().UnixMilli() + hourMs + g.rng.Int64N(10*minuteMs)
	}
	m.Data = g.encode()
	return m
}

// dropRequired removes what the event's type requires: its metric(s), or the
// report_id/status attrs of a citizen report.
func (g *Generator) dropRequired(e *event) {
	switch e.kind {
	case "feedback":
		if g.rng.IntN(2) == 0 {
			e.removeAttr("report_id")
		} else {
			e.removeAttr("status")
		}
	case "traffic":
		if g.rng.IntN(2) == 0 {
			e.removeMetric("averageVehicleSpeed")
		} else {
			e.removeMetric("intensity")
		}
	default:
		// Every other type requires at least one metric it carries.
		e.nm = 0
	}
}

func (g *Generator) breakField(e *event) {
	rng := g.rng
	switch rng.IntN(9) {
	case 0:
		e.id = "evt #" + e.id[:8]
	case 1:
		e.id = e.id + "-" + strings.Repeat("x", 64)
	case 2:
		e.timeRaw = string(appendTime(nil, e.timeMs)[:10]) // date only
	case 3:
		b := appendTime(nil, e.timeMs)
		e.timeRaw = string(b[8:10]) + "/" + string(b[5:7]) + "/" + string(b[:4]) + " " + string(b[11:19])
	case 4:
		e.timeRaw = string(appendTime(nil, e.timeMs)[:23]) // no offset
	case 5:
		e.hasLoc = true
		if rng.IntN(2) == 0 {
			e.lat = 200
		} else {
			e.lon = -300
		}
	case 6: // a metric value as a string
		if e.nm == 0 {
			e.addMetric("resolutionMinutes", 0, 0)
		}
		m := &e.metrics[rng.IntN(e.nm)]
		m.raw = `"` + string(appendNumber(nil, m.v, m.prec)) + `"`
	case 7: // an attrs value that is not a string
		if e.na == 0 {
			e.addAttr("interval_s", "")
		}
		a := &e.attrs[rng.IntN(e.na)]
		a.val, a.raw = "300", true
	default: // an attrs value longer than 256 bytes
		e.addAttr("note", strings.Repeat("lũ lụt ", 40))
	}
}

func (g *Generator) outOfRange(e *event) {
	set := func(name string, v float64) {
		if m := e.metric(name); m != nil {
			m.v, m.prec = v, 0
			return
		}
		e.addMetric(name, v, 0)
	}
	pick := g.rng.IntN(2) == 0
	switch e.typ {
	case "air_quality":
		set("pm25", 9000)
	case "water_level":
		if pick {
			set("height", 75)
		} else {
			set("height", -20)
		}
	case "rainfall":
		set("precipitation", 1500)
	case "noise":
		set("LAeq", 250)
	case "weather":
		if pick {
			set("relativeHumidity", 1.5)
			e.metric("relativeHumidity").prec = 1
		} else {
			set("temperature", 95)
		}
	case "flow":
		if pick {
			set("averageVehicleSpeed", 400)
		} else {
			set("occupancy", 1.7)
			e.metric("occupancy").prec = 1
		}
	case "vehicle_count":
		set("car", -3)
	case "person_count":
		set("peopleCount", -1)
	default:
		if e.kind == "camera" {
			set("confidence", 1.4)
			e.metric("confidence").prec = 1
		} else { // feedback
			set("resolutionMinutes", -30)
		}
	}
}
