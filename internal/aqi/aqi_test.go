package aqi

import (
	"math"
	"testing"
)

func hours(vals ...float64) Hours {
	h := Missing()
	copy(h[:], vals)
	return h
}

func constant(c float64) Hours {
	var h Hours
	for i := range h {
		h[i] = c
	}
	return h
}

func TestSubIndexBandEdges(t *testing.T) {
	tests := []struct {
		p    string
		c    float64
		want float64
	}{
		{PM25, 0, 0}, {PM25, 25, 50}, {PM25, 50, 100}, {PM25, 80, 150}, {PM25, 150, 200},
		{PM25, 250, 300}, {PM25, 350, 400}, {PM25, 500, 500}, {PM25, 600, 500},
		{PM25, 35, 70},                   // 50 + 50/25·10
		{PM10, 100, 75},                  // 50 + 50/100·50
		{NO2, 150, 75},                   // 50 + 50/100·50
		{CO, 10000, 50}, {CO, 20000, 75}, // 50 + 50/20000·10000
		{O3, 250, 125}, // 100 + 50/100·50
		{SO2, 1600, 300}, {SO2, 2630, 500},
	}
	for _, tt := range tests {
		got, ok := SubIndex(tt.p, tt.c)
		if !ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("SubIndex(%s, %g) = %g, %v; want %g", tt.p, tt.c, got, ok, tt.want)
		}
	}
	if _, ok := SubIndex(PM25, -1); ok {
		t.Error("negative concentration accepted")
	}
	if _, ok := SubIndex("benzene", 1); ok {
		t.Error("unknown pollutant accepted")
	}
}

func TestNowCast(t *testing.T) {
	tests := []struct {
		name string
		h    Hours
		want float64
		ok   bool
	}{
		{"constant", constant(35), 35, true},
		// Cmin/Cmax = 0.5: w = 0.5, (60 + 0.5·30)/(1 + 0.5) = 50.
		{"two hours", hours(60, 30), 50, true},
		// w* = 36/40 = 0.9: (40 + 0.9·36 + 0.81·38)/(1 + 0.9 + 0.81).
		{"three hours", hours(40, 36, 38), (40 + 0.9*36 + 0.81*38) / 2.71, true},
		// w* = 10/100 below one half: w = 0.5.
		{"weight floor", hours(100, 10), (100 + 0.5*10) / 1.5, true},
		// The current hour missing: two of the last three still suffice, and
		// the weights keep their hour: (0.5·20 + 0.25·40)/(0.5 + 0.25).
		{"current hour missing", hours(math.NaN(), 20, 40), (0.5*20 + 0.25*40) / 0.75, true},
		{"only one recent hour", hours(50, math.NaN(), math.NaN(), 40, 40), 0, false},
		{"no data", Missing(), 0, false},
		{"all zero", constant(0), 0, true},
	}
	for _, tt := range tests {
		got, ok := NowCast(tt.h)
		if ok != tt.ok || ok && math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: NowCast = %g, %v; want %g, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHourly(t *testing.T) {
	tests := []struct {
		name     string
		series   map[string]Hours
		want     int
		dominant string
		ok       bool
	}{
		{"PM2.5 only", map[string]Hours{PM25: constant(35)}, 70, PM25, true},
		// NowCast 38.07…: 50 + 2·13.07… = 76.15 → 76.
		{"NowCast rounds", map[string]Hours{PM25: hours(40, 36, 38)}, 76, PM25, true},
		// PM10 100 and NO2 150 both give 75: the tie goes to PM10, first in Pollutants.
		{"tie goes to the first pollutant", map[string]Hours{PM10: constant(100), NO2: hours(150)}, 75, PM10, true},
		{"gas dominates", map[string]Hours{PM25: constant(20), O3: hours(250)}, 125, O3, true},
		{"gas uses only the current hour", map[string]Hours{PM25: constant(20), NO2: hours(math.NaN(), 3000)}, 40, PM25, true},
		{"no PM, no index", map[string]Hours{NO2: hours(150), O3: hours(100)}, 0, "", false},
		{"PM without enough hours", map[string]Hours{PM25: hours(50), NO2: hours(150)}, 0, "", false},
		{"beyond the table", map[string]Hours{PM25: constant(900)}, 500, PM25, true},
	}
	for _, tt := range tests {
		got, ok := Hourly(tt.series)
		if ok != tt.ok || ok && (got.Value != tt.want || got.Dominant != tt.dominant) {
			t.Errorf("%s: got %+v, %v; want %d (%s), %v", tt.name, got, ok, tt.want, tt.dominant, tt.ok)
		}
	}
	r, _ := Hourly(map[string]Hours{PM25: constant(35), PM10: constant(100), CO: hours(20000)})
	if r.Sub[PM25] != 70 || r.Sub[PM10] != 75 || r.Sub[CO] != 75 || r.Value != 75 {
		t.Errorf("sub-indices %+v", r)
	}
}

func TestCategoryEdges(t *testing.T) {
	tests := []struct {
		v    int
		name string
	}{
		{0, "Tốt"}, {50, "Tốt"}, {51, "Trung bình"}, {100, "Trung bình"}, {101, "Kém"}, {150, "Kém"},
		{151, "Xấu"}, {200, "Xấu"}, {201, "Rất xấu"}, {300, "Rất xấu"}, {301, "Nguy hại"}, {500, "Nguy hại"},
	}
	for _, tt := range tests {
		if got := CategoryOf(tt.v).Name; got != tt.name {
			t.Errorf("CategoryOf(%d) = %s, want %s", tt.v, got, tt.name)
		}
	}
	if CategoryOf(175).RGB != [3]uint8{255, 0, 0} {
		t.Error("Xấu is red")
	}
}
