// Package aqi computes the Vietnamese air quality index VN_AQI of Decision
// 1459/QĐ-TCMT (2019): hourly, per station, from hourly mean
// concentrations in µg/m³. PM2.5 and PM10 use NowCast over the last 12
// hours; O3, CO, SO2 and NO2 use the hour's mean; the index is the largest
// sub-index and needs PM2.5 or PM10.
package aqi

import (
	"math"
)

// Pollutant names are the envelope's metric names.
const (
	PM25 = "pm25"
	PM10 = "pm10"
	O3   = "o3"
	CO   = "co"
	SO2  = "so2"
	NO2  = "no2"
)

// Pollutants lists them in a fixed order (the dominant pollutant of a tie
// is the first in this order).
var Pollutants = []string{PM25, PM10, O3, CO, SO2, NO2}

// breakpoints per pollutant: concentrations (µg/m³) for the index levels
// 0, 50, 100, 150, 200, 300, 400, 500. O3 is the 1-hour column; its 1-hour
// table ends at 500 like the others.
var (
	levels      = []float64{0, 50, 100, 150, 200, 300, 400, 500}
	breakpoints = map[string][]float64{
		O3:   {0, 160, 200, 300, 400, 800, 1000, 1200},
		CO:   {0, 10000, 30000, 45000, 60000, 90000, 120000, 150000},
		SO2:  {0, 125, 350, 550, 800, 1600, 2100, 2630},
		NO2:  {0, 100, 200, 700, 1200, 2350, 3100, 3850},
		PM10: {0, 50, 150, 250, 350, 420, 500, 600},
		PM25: {0, 25, 50, 80, 150, 250, 350, 500},
	}
)

// Hours holds a pollutant's hourly means for the 12 most recent hours:
// index 0 is the hour being computed, 1 the hour before, and so on. NaN
// marks a missing hour.
type Hours [12]float64

// Missing returns Hours with every hour missing.
func Missing() Hours {
	var h Hours
	for i := range h {
		h[i] = math.NaN()
	}
	return h
}

// NowCast returns the weighted concentration of Decision 1459 for PM:
// w* = Cmin/Cmax over the available hours, w = max(w*, 1/2), and
// NowCast = Σ w^(i−1)·c_i / Σ w^(i−1) over the available hours. It needs at
// least two of the three most recent hours; ok is false otherwise.
func NowCast(h Hours) (float64, bool) {
	recent := 0
	for _, c := range h[:3] {
		if !math.IsNaN(c) {
			recent++
		}
	}
	if recent < 2 {
		return 0, false
	}
	cmin, cmax := math.Inf(1), math.Inf(-1)
	for _, c := range h {
		if !math.IsNaN(c) {
			cmin, cmax = math.Min(cmin, c), math.Max(cmax, c)
		}
	}
	w := 1.0
	if cmax > 0 {
		w = math.Max(cmin/cmax, 0.5)
	}
	var num, den float64
	weight := 1.0
	for _, c := range h {
		if !math.IsNaN(c) {
			num += weight * c
			den += weight
		}
		weight *= w
	}
	return num / den, true
}

// SubIndex interpolates a concentration into the index of one pollutant:
// I = (I_hi − I_lo)/(BP_hi − BP_lo)·(C − BP_lo) + I_lo. Concentrations above
// the last breakpoint give 500; negative ones and unknown pollutants give
// ok = false.
func SubIndex(pollutant string, c float64) (float64, bool) {
	bp, known := breakpoints[pollutant]
	if !known || math.IsNaN(c) || c < 0 {
		return 0, false
	}
	for i := 1; i < len(bp); i++ {
		if c <= bp[i] {
			return (levels[i]-levels[i-1])/(bp[i]-bp[i-1])*(c-bp[i-1]) + levels[i-1], true
		}
	}
	return levels[len(levels)-1], true
}

// Result is the hourly VN_AQI of one station.
type Result struct {
	Value    int            // the index, rounded to a whole number
	Dominant string         // the pollutant with the largest sub-index
	Sub      map[string]int // the sub-index of every pollutant that had data
}

// Hourly computes the index from each pollutant's last 12 hourly means.
// ok is false when neither PM2.5 nor PM10 has enough data.
func Hourly(series map[string]Hours) (Result, bool) {
	res := Result{Sub: map[string]int{}}
	best := -1.0
	hasPM := false
	for _, p := range Pollutants {
		h, present := series[p]
		if !present {
			continue
		}
		c, ok := h[0], !math.IsNaN(h[0])
		if p == PM25 || p == PM10 {
			c, ok = NowCast(h)
		}
		if !ok {
			continue
		}
		idx, ok := SubIndex(p, c)
		if !ok {
			continue
		}
		if p == PM25 || p == PM10 {
			hasPM = true
		}
		res.Sub[p] = int(math.Round(idx))
		if idx > best {
			best, res.Dominant = idx, p
		}
	}
	if !hasPM {
		return Result{}, false
	}
	res.Value = int(math.Round(best))
	return res, true
}

// Category is a band of the index with its Vietnamese name and colour.
type Category struct {
	Name string
	RGB  [3]uint8
}

var categories = []struct {
	upTo int
	cat  Category
}{
	{50, Category{"Tốt", [3]uint8{0, 228, 0}}},
	{100, Category{"Trung bình", [3]uint8{255, 255, 0}}},
	{150, Category{"Kém", [3]uint8{255, 126, 0}}},
	{200, Category{"Xấu", [3]uint8{255, 0, 0}}},
	{300, Category{"Rất xấu", [3]uint8{143, 63, 151}}},
	{math.MaxInt, Category{"Nguy hại", [3]uint8{126, 0, 35}}},
}

// CategoryOf returns the band of an index value.
func CategoryOf(v int) Category {
	for _, c := range categories {
		if v <= c.upTo {
			return c.cat
		}
	}
	return categories[len(categories)-1].cat
}
