package sim

import "math"

// Scenario selects what the simulated city goes through.
type Scenario string

// The scenarios. Each non-normal scenario plays one episode shortly after
// the start and repeats it every simulated day, so long load tests keep
// exercising the alert rules.
const (
	ScenarioNormal     Scenario = "normal"
	ScenarioFlood      Scenario = "flood"
	ScenarioPollution  Scenario = "pollution"
	ScenarioCongestion Scenario = "congestion"
)

// Scenarios lists the valid scenario names.
func Scenarios() []Scenario {
	return []Scenario{ScenarioNormal, ScenarioFlood, ScenarioPollution, ScenarioCongestion}
}

const (
	minuteMs = 60_000
	hourMs   = 60 * minuteMs
)

// episodeDelay is how long after Start the first episode begins: long enough
// to establish a normal baseline (and per-source watermarks) first, short
// enough to see the episode in a demo.
func episodeDelay(sc Scenario) int64 {
	if sc == ScenarioCongestion {
		return 10 * minuteMs
	}
	return 15 * minuteMs
}

// Flood: heavy rain for 3 h, the river rises for 2.5 h from 30 min after the
// rain begins, stays near its peak for 30 min and recedes over 3 h.
func floodShape(e int64) float64 {
	switch {
	case e < 30*minuteMs:
		return 0
	case e < 3*hourMs:
		return smoothstep(float64(e-30*minuteMs) / float64(150*minuteMs))
	case e < 3*hourMs+30*minuteMs:
		return 1
	case e < 6*hourMs+30*minuteMs:
		return 1 - smoothstep(float64(e-3*hourMs-30*minuteMs)/float64(3*hourMs))
	}
	return 0
}

// floodRain returns the extra rain (mm per 5 min) at elapsed time e of a
// flood episode: about 250 mm in 3 h ("high intensity" is > 100 mm/3 h),
// then a moderate tail.
func floodRain(e int64, u float64) float64 {
	switch {
	case e < 0:
		return 0
	case e < 3*hourMs:
		return 4 + 6*u
	case e < 5*hourMs:
		return 1 + 2*u
	}
	return 0
}

func floodActive(e int64) bool { return e >= 0 && e < 7*hourMs }

// Pollution (e.g. straw burning plus a temperature inversion): 1.5 h ramp,
// 4 h plateau, 1.5 h decay.
func pollutionShape(e int64) float64 {
	switch {
	case e < 0:
		return 0
	case e < 90*minuteMs:
		return smoothstep(float64(e) / float64(90*minuteMs))
	case e < 330*minuteMs:
		return 1
	case e < 420*minuteMs:
		return 1 - smoothstep(float64(e-330*minuteMs)/float64(90*minuteMs))
	}
	return 0
}

// Congestion: 5 min build-up, 35 min at a standstill (LOS F), 5 min to clear.
func congestionShape(e int64) float64 {
	switch {
	case e < 0:
		return 0
	case e < 5*minuteMs:
		return float64(e) / float64(5*minuteMs)
	case e < 40*minuteMs:
		return 1
	case e < 45*minuteMs:
		return 1 - float64(e-40*minuteMs)/float64(5*minuteMs)
	}
	return 0
}

func smoothstep(x float64) float64 {
	x = math.Max(0, math.Min(1, x))
	return x * x * (3 - 2*x)
}

// Hourly profiles (local time), interpolated linearly.
var (
	// Vehicles: morning and evening rush hours, quiet nights.
	trafficProfile = [24]float64{0.10, 0.06, 0.05, 0.05, 0.08, 0.25, 0.60, 1.00, 0.90, 0.70, 0.65, 0.70,
		0.60, 0.55, 0.60, 0.70, 0.85, 1.00, 0.95, 0.80, 0.60, 0.45, 0.30, 0.18}
	// PM2.5 relative to the station's daily mean: rush hours and the
	// evening's shallow boundary layer.
	pmProfile = [24]float64{0.90, 0.85, 0.80, 0.80, 0.85, 0.95, 1.15, 1.30, 1.25, 1.10, 0.95, 0.85,
		0.80, 0.75, 0.72, 0.75, 0.85, 1.05, 1.30, 1.40, 1.35, 1.20, 1.05, 0.95}
	// People in view of a crowd camera.
	crowdProfile = [24]float64{0.05, 0.03, 0.02, 0.02, 0.05, 0.20, 0.40, 0.55, 0.60, 0.65, 0.70, 0.65,
		0.55, 0.50, 0.55, 0.65, 0.80, 0.95, 1.00, 1.00, 0.90, 0.65, 0.35, 0.15}
)

func interp24(t *[24]float64, h float64) float64 {
	i := int(h) % 24
	f := h - math.Floor(h)
	return t[i]*(1-f) + t[(i+1)%24]*f
}

// localHour is the hour of day in Huế (UTC+7) as a fraction.
func localHour(ms int64) float64 {
	return float64(floorMod(ms+ictOffsetMs, msPerDay)) / hourMs
}

// daylight is 0 at night and peaks at 1 in the early afternoon.
func daylight(h float64) float64 {
	if h < 6.5 || h > 19.5 {
		return 0
	}
	return math.Sin(math.Pi * (h - 6.5) / 13)
}

func round(v float64, prec int) float64 {
	p := math.Pow10(prec)
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}
