package sim

import (
	"strconv"

	"github.com/iocstream/iocstream/internal/city"
)

// Hue-S citizen reports. Real volume is about 100 new reports a day; the
// simulator files about 240 (fewer at night) so that they show up in a demo,
// and each report emits one event per status change.

var feedbackCategories = [...]struct {
	slug, name    string
	weight, flood int
}{
	{"moi-truong", "Môi trường, rác thải", 25, 10},
	{"trat-tu-do-thi", "Trật tự đô thị", 20, 5},
	{"giao-thong", "Giao thông", 12, 8},
	{"ha-tang", "Hạ tầng xuống cấp", 12, 10},
	{"chieu-sang", "Điện chiếu sáng", 8, 6},
	{"cap-thoat-nuoc", "Cấp thoát nước, ngập úng", 8, 60},
	{"an-ninh", "An ninh trật tự", 5, 3},
	{"y-te", "Y tế", 3, 3},
	{"khac", "Khác", 7, 5},
}

var feedbackChannels = [...]struct {
	name   string
	weight int
}{{"app", 70}, {"hotline", 15}, {"zalo", 10}, {"web", 5}}

const (
	statusReceived = iota
	statusAssigned
	statusProcessing
	statusResolved
	statusRejected
)

var statusNames = [...]string{"received", "assigned", "processing", "resolved", "rejected"}

type report struct {
	em       emitter
	id       string
	area     int
	category int
	channel  string
	urgent   bool
	status   int
	created  int64
	lat, lon float64
}

// newReport files a report, emits its "received" event and schedules its
// next status change.
func (g *Generator) newReport() *report {
	g.nRep++
	flooding := g.cfg.Scenario == ScenarioFlood && floodActive(g.episode(0))
	var cw [len(feedbackCategories)]int
	for i, c := range feedbackCategories {
		cw[i] = c.weight
		if flooding {
			cw[i] = c.flood
		}
	}
	var chw [len(feedbackChannels)]int
	for i, c := range feedbackChannels {
		chw[i] = c.weight
	}
	r := &report{
		id:       "hs-" + g.runTag + "-" + strconv.FormatUint(g.nRep, 10),
		area:     pickWeighted(g.rng, g.areaWeights),
		category: pickWeighted(g.rng, cw[:]),
		channel:  feedbackChannels[pickWeighted(g.rng, chw[:])].name,
		created:  g.clock,
	}
	slug := feedbackCategories[r.category].slug
	urgentChance := 0.04
	if slug == "an-ninh" || slug == "y-te" || (flooding && slug == "cap-thoat-nuoc") {
		urgentChance = 0.3
	}
	r.urgent = g.rng.Float64() < urgentChance
	a := city.At(r.area)
	r.lat = round(a.Lat+(g.rng.Float64()*2-1)*0.01, 5)
	r.lon = round(a.Lon+(g.rng.Float64()*2-1)*0.01, 5)
	r.em = emitter{what: emitReportUpdate, rep: r}
	g.emitReport(r)
	r.em.at = g.clock + g.reportDelay(r)
	return r
}

// advanceReport moves r to its next status and emits the event. It reports
// whether r stays open.
func (g *Generator) advanceReport(r *report) bool {
	switch r.status {
	case statusReceived:
		r.status = statusAssigned
		// A few reports are out of scope or duplicates of others.
		if g.rng.IntN(100) < 3 {
			r.status = statusRejected
		}
	case statusAssigned:
		r.status = statusProcessing
	case statusProcessing:
		r.status = statusResolved
	}
	g.emitReport(r)
	if r.status == statusResolved || r.status == statusRejected {
		return false
	}
	r.em.at = g.clock + g.reportDelay(r)
	return true
}

// reportDelay is the time until r's next status change; urgent reports move
// faster.
func (g *Generator) reportDelay(r *report) int64 {
	var lo, hi int64
	switch r.status {
	case statusReceived:
		lo, hi = 10*minuteMs, 60*minuteMs
	case statusAssigned:
		lo, hi = 20*minuteMs, 180*minuteMs
	default:
		lo, hi = 30*minuteMs, 12*hourMs
	}
	if r.urgent {
		lo, hi = lo/4, hi/4
	}
	return lo + g.rng.Int64N(hi-lo)
}

func (g *Generator) emitReport(r *report) {
	c := feedbackCategories[r.category]
	e := g.begin(g.fbSubjects[r.area], "feedback", c.slug, feedbackSource, city.At(r.area).Slug, r.lat, r.lon)
	e.addAttr("report_id", r.id)
	e.addAttr("status", statusNames[r.status])
	e.addAttr("channel", r.channel)
	e.addAttr("category_name", c.name)
	if r.urgent {
		e.addAttr("priority", "urgent")
	}
	if r.status == statusResolved {
		e.addMetric("resolutionMinutes", float64((g.clock-r.created)/minuteMs), 0)
	}
}
