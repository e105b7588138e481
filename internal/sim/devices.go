package sim

import (
	"github.com/iocstream/iocstream/internal/city"
	"github.com/iocstream/iocstream/internal/subject"
	"math/rand/v2"
	"strconv"
)

type deviceClass uint8

const (
	classAirQuality deviceClass = iota
	classWaterLevel
	classRainfall
	classNoise
	classWeather
	classTrafficFlow
	classVehicleCount
	classPersonCount
)

// device is one simulated sensor or camera stream. Its mutable fields are
// the slowly varying state that makes consecutive readings look like a real
// series rather than white noise.
type device struct {
	class           deviceClass
	kind, typ       string
	source, area    string
	subject         string
	lat, lon        float64
	periodMs        int64
	attrs           []attr // static attrs, copied into every event
	base            float64
	peak            float64 // scenario level (water height, PM2.5) for affected devices
	free            float64 // free-flow speed of a traffic detector
	leadMs          int64   // how much earlier a river gauge sees the flood wave
	special         bool    // affected by the running scenario
	walk            float64 // AR(1) state, a multiplicative or additive disturbance
	showerLeftMs    int64
	showerIntensity float64
}

func newDevice(class deviceClass, kind, typ, source, area string, lat, lon float64, periodMs int64) *device {
	return &device{
		class:    class,
		kind:     kind,
		typ:      typ,
		source:   source,
		area:     area,
		subject:  subject.Event(kind, area, source),
		lat:      round(lat, 5),
		lon:      round(lon, 5),
		periodMs: periodMs,
	}
}

// placeIn returns a point near the centre of an area, so devices of one
// area do not all sit on the same coordinates.
func placeIn(rng *rand.Rand, slug string, spread float64) (lat, lon float64) {
	a := city.At(city.Index(slug))
	return a.Lat + (rng.Float64()*2-1)*spread, a.Lon + (rng.Float64()*2-1)*spread
}

// population builds the device population. Names and placements are fictional but
// plausible; the river gauges sit where the real Kim Long and Phú Ốc gauges
// are.
//
// extraCameras more vehicle-count cameras (each fourth also counting
// people) are spread over all 40 units after Huế's own 40, for loads of a
// city-wide camera network.
func population(rng *rand.Rand, sc Scenario, extraCameras int) (devices, cameras []*device) {
	add := func(d *device) *device {
		devices = append(devices, d)
		return d
	}

	// River gauges. Normal levels are dry-season-like; the alarm levels are
	// those of DOMAIN.md, the flood peaks sit between BĐ3 and the records.
	kl := add(newDevice(classWaterLevel, "environment", "water_level", "wl-kim-long", "kim-long", 16.4700, 107.5700, 60_000))
	kl.attrs = []attr{{key: "river", val: "huong"}}
	kl.base, kl.peak = 0.6, 3.8
	po := add(newDevice(classWaterLevel, "environment", "water_level", "wl-phu-oc", "huong-tra", 16.5500, 107.4700, 60_000))
	po.attrs = []attr{{key: "river", val: "bo"}}
	po.base, po.peak = 1.0, 4.8
	po.leadMs = 15 * 60_000 // upstream of Huế: the wave arrives earlier

	// Air quality. An Cựu (traffic) and Phú Bài (industrial park) are the
	// stations that the pollution scenario drives to "Xấu"/"Rất xấu".
	for _, slug := range []string{"phu-xuan", "thuan-hoa", "vy-da", "an-cuu", "kim-long", "huong-thuy", "phu-bai", "thuan-an"} {
		lat, lon := placeIn(rng, slug, 0.004)
		d := add(newDevice(classAirQuality, "environment", "air_quality", "aq-"+slug, slug, lat, lon, 60_000))
		d.base = 24 + rng.Float64()*12
		if sc == ScenarioPollution && (slug == "an-cuu" || slug == "phu-bai") {
			d.special = true
			d.peak = 170 + rng.Float64()*60
		}
	}

	// Rain gauges; the mountains of A Lưới get more rain.
	for _, slug := range []string{"thuan-hoa", "huong-tra", "a-luoi-3", "phu-loc"} {
		lat, lon := placeIn(rng, slug, 0.004)
		d := add(newDevice(classRainfall, "environment", "rainfall", "rg-"+slug, slug, lat, lon, 300_000))
		d.attrs = []attr{{key: "interval_s", val: "300"}}
		d.base = 1
		if slug == "a-luoi-3" {
			d.base = 1.3
		}
	}

	// Noise meters; the one near Huế Central Hospital is in a special zone.
	for _, slug := range []string{"phu-xuan", "thuan-hoa", "an-cuu", "vy-da"} {
		lat, lon := placeIn(rng, slug, 0.004)
		d := add(newDevice(classNoise, "environment", "noise", "ns-"+slug, slug, lat, lon, 60_000))
		zone := "normal"
		d.base = 66 + rng.Float64()*4
		if slug == "thuan-hoa" {
			zone = "special"
			d.base = 57 + rng.Float64()*3
		}
		d.attrs = []attr{{key: "zone", val: zone}}
	}

	// Weather: the airport and the mountains (cooler).
	for _, slug := range []string{"phu-bai", "a-luoi-3"} {
		lat, lon := placeIn(rng, slug, 0.004)
		d := add(newDevice(classWeather, "environment", "weather", "ws-"+slug, slug, lat, lon, 60_000))
		if slug == "a-luoi-3" {
			d.base = -4
		}
	}

	// Traffic detectors, one per lane, on the main streets.
	detectors := []struct {
		street, area string
		lane         int
		congested    bool
	}{
		{"le-loi", "thuan-hoa", 1, true},
		{"le-loi", "thuan-hoa", 2, true},
		{"hung-vuong", "an-cuu", 1, true},
		{"hung-vuong", "an-cuu", 2, true},
		{"tran-hung-dao", "phu-xuan", 1, true},
		{"tran-hung-dao", "phu-xuan", 2, false},
		{"ba-trieu", "vy-da", 1, false},
		{"le-duan", "phu-xuan", 1, false},
		{"dien-bien-phu", "thuy-xuan", 1, false},
		{"nguyen-tat-thanh", "huong-thuy", 1, false},
		{"nguyen-tat-thanh", "huong-thuy", 2, false},
		{"vo-nguyen-giap", "an-cuu", 1, false},
	}
	for _, td := range detectors {
		lane := strconv.Itoa(td.lane)
		lat, lon := placeIn(rng, td.area, 0.006)
		d := add(newDevice(classTrafficFlow, "traffic", "flow", "td-"+td.street+"-"+lane, td.area, lat, lon, 30_000))
		d.attrs = []attr{{key: "interval_s", val: "30"}, {key: "laneId", val: lane}}
		d.base = 18 + rng.Float64()*14 // vehicles per 30 s at the peak
		d.free = 40 + rng.Float64()*12
		d.special = sc == ScenarioCongestion && td.congested
	}

	// Cameras, mostly in the urban wards.
	camAreas := []struct {
		slug string
		n    int
	}{
		{"phu-xuan", 5}, {"thuan-hoa", 5}, {"an-cuu", 4}, {"vy-da", 3}, {"kim-long", 3},
		{"thuy-xuan", 2}, {"huong-thuy", 2}, {"phu-bai", 3}, {"thuan-an", 2}, {"duong-no", 1},
		{"my-thuong", 1}, {"thanh-thuy", 2}, {"huong-tra", 2}, {"huong-an", 1}, {"phong-dien", 1},
		{"chan-may-lang-co", 1}, {"a-luoi-3", 1}, {"phu-loc", 1},
	}
	var places []string
	for _, ca := range camAreas {
		for range ca.n {
			places = append(places, ca.slug)
		}
	}
	for i := range extraCameras {
		places = append(places, city.At(i%city.Count).Slug)
	}
	n := 0
	for _, slug := range places {
		n++
		id := "cam-" + pad4(n)
		lat, lon := placeIn(rng, slug, 0.008)
		d := add(newDevice(classVehicleCount, "camera", "vehicle_count", id, slug, lat, lon, 5_000))
		dir := "inbound"
		if n%2 == 0 {
			dir = "outbound"
		}
		d.attrs = []attr{{key: "interval_s", val: "5"}, {key: "direction", val: dir}}
		d.base = 0.5 + rng.Float64()
		cameras = append(cameras, d)
		// Every fourth camera also watches crowds (markets, the citadel,
		// the walking streets).
		if n%4 == 1 {
			p := add(newDevice(classPersonCount, "camera", "person_count", id, slug, d.lat, d.lon, 60_000))
			p.attrs = []attr{{key: "interval_s", val: "60"}}
			p.base = 20 + rng.Float64()*80
		}
	}
	return devices, cameras
}

func pad4(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}
