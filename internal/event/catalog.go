package event

// The catalog of kinds, types and metrics of CONTRACT.md section 2. It is
// read-only after package initialisation.

// metricRange is the accepted range of a known metric.
type metricRange struct {
	min, max float64
	integer  bool
}

// knownMetric is a metric's range and its canonical string, shared by every
// event that carries it.
type knownMetric struct {
	metricRange
	name string
}

const unbounded = 1e300

var metricRanges = map[string]metricRange{
	// camera
	"car": {0, unbounded, true}, "motorbike": {0, unbounded, true}, "truck": {0, unbounded, true},
	"bus": {0, unbounded, true}, "bicycle": {0, unbounded, true}, "peopleCount": {0, unbounded, true},
	"confidence": {0, 1, false},
	// traffic
	"intensity": {0, unbounded, false}, "averageVehicleSpeed": {0, 250, false},
	"occupancy": {0, 1, false}, "queueLength": {0, unbounded, false},
	// environment
	"pm25": {0, 5000, false}, "pm10": {0, 5000, false}, "no2": {0, 5000, false},
	"so2": {0, 5000, false}, "co": {0, 150_000, false}, "o3": {0, 5000, false},
	"height": {-10, 50, false}, "precipitation": {0, 1000, false},
	"LAeq": {0, 200, false}, "LAmax": {0, 200, false},
	"temperature": {-50, 70, false}, "relativeHumidity": {0, 1, false}, "windSpeed": {0, 100, false},
	// feedback
	"resolutionMinutes": {0, unbounded, false},
}

// typeRule says what a type requires: all of allOf and at least one of
// anyOf. name is the type's canonical string.
type typeRule struct {
	allOf []string
	anyOf []string
	name  string
	kind  string
}

// kindSpec is a kind's canonical name and its types.
type kindSpec struct {
	name  string
	types map[string]*typeRule
}

// kinds is the catalog with canonical strings filled in, built once: a
// lookup gives both the rule and the string to keep, so accepted events
// share their kind, type and metric name strings without interning.
var kinds = func() map[string]kindSpec {
	out := make(map[string]kindSpec, len(types))
	for k, ts := range types {
		spec := kindSpec{name: k, types: make(map[string]*typeRule, len(ts))}
		for t, rule := range ts {
			rule.name, rule.kind = t, k
			spec.types[t] = &rule
		}
		out[k] = spec
	}
	return out
}()

var knownMetrics = func() map[string]*knownMetric {
	out := make(map[string]*knownMetric, len(metricRanges))
	for name, r := range metricRanges {
		out[name] = &knownMetric{r, name}
	}
	return out
}()

// kindName returns the canonical string of a known kind without a map
// lookup, for the subject's kind token.
func kindName(s string) (string, bool) {
	switch s {
	case "camera":
		return "camera", true
	case "traffic":
		return "traffic", true
	case "environment":
		return "environment", true
	case "feedback":
		return "feedback", true
	}
	return "", false
}

var (
	detection = typeRule{allOf: []string{"confidence"}}
	noMetrics = typeRule{}
)

var types = map[string]map[string]typeRule{
	"camera": {
		"vehicle_count":   {anyOf: []string{"car", "motorbike", "truck", "bus", "bicycle"}},
		"person_count":    {allOf: []string{"peopleCount"}},
		"fire":            detection,
		"smoke":           detection,
		"accident":        detection,
		"road_flooding":   detection,
		"illegal_parking": detection,
		"wrong_way":       detection,
		"crowd_gathering": detection,
	},
	"traffic": {
		"flow": {allOf: []string{"intensity", "averageVehicleSpeed"}},
	},
	"environment": {
		"air_quality": {anyOf: []string{"pm25", "pm10", "no2", "so2", "co", "o3"}},
		"water_level": {allOf: []string{"height"}},
		"rainfall":    {allOf: []string{"precipitation"}},
		"noise":       {allOf: []string{"LAeq"}},
		"weather":     {anyOf: []string{"temperature", "relativeHumidity", "windSpeed"}},
	},
	// Feedback types are the Hue-S report categories of DOMAIN.md.
	"feedback": {
		"moi-truong": noMetrics, "trat-tu-do-thi": noMetrics, "giao-thong": noMetrics,
		"ha-tang": noMetrics, "chieu-sang": noMetrics, "cap-thoat-nuoc": noMetrics,
		"an-ninh": noMetrics, "y-te": noMetrics, "khac": noMetrics,
	},
}

var feedbackStatuses = map[string]bool{
	"received": true, "assigned": true, "processing": true, "resolved": true, "rejected": true,
}

var feedbackChannels = map[string]bool{"app": true, "hotline": true, "web": true, "zalo": true}
