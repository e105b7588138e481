package aqi

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/window"
)

// base is an hour start; test hours are counted from it.
var base = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli()

func at(hour, minute int) int64 {
	return base + int64(hour)*hourMs + int64(minute)*minuteMs
}

// minuteRow is a final 1-minute row of one reading.
func minuteRow(src, metric string, hour, minute int, v float64) window.Row {
	return minuteRows(src, metric, hour, minute, v, 1)
}

// minuteRows is a final 1-minute row of count readings summing to sum.
func minuteRows(src, metric string, hour, minute int, sum float64, count uint64) window.Row {
	return window.Row{
		StartMs: at(hour, minute), SizeMs: minuteMs,
		Kind: airKind, Type: airType, Metric: metric, Area: "phu-xuan", Source: src,
		Count: count, Sum: sum, Min: sum / float64(count), Max: sum / float64(count),
		First: sum / float64(count), Last: sum / float64(count), Final: true,
	}
}

// steady gives one reading of metric at minutes 0 and 30 of hours from..to.
func steady(src, metric string, from, to int, v float64) []window.Row {
	var rows []window.Row
	for h := from; h <= to; h++ {
		rows = append(rows, minuteRow(src, metric, h, 0, v), minuteRow(src, metric, h, 30, v))
	}
	return rows
}

// hourly gives one reading of metric at minute 0 of hours from..to.
func hourly(src, metric string, from, to int, v float64) []window.Row {
	var rows []window.Row
	for h := from; h <= to; h++ {
		rows = append(rows, minuteRow(src, metric, h, 0, v))
	}
	return rows
}

func join(parts ...[]window.Row) []window.Row {
	return slices.Concat(parts...)
}

func one(r window.Row) []window.Row { return []window.Row{r} }

// hv is an emitted index: station, hour counted from base, value.
type hv struct {
	src   string
	hour  int
	value int
}

func summarise(t *testing.T, rows []window.Row) []hv {
	t.Helper()
	var out []hv
	for _, r := range rows {
		if r.Metric != Metric || r.SizeMs != hourMs || !r.Final || r.Count != 1 || (r.StartMs-base)%hourMs != 0 {
			t.Errorf("malformed row %+v", r)
		}
		out = append(out, hv{r.Source, int((r.StartMs - base) / hourMs), int(r.Sum)})
	}
	return out
}

func TestDeriver(t *testing.T) {
	tests := []struct {
		name    string
		restore [][]window.Row // Restore calls before the first Add
		batches [][]window.Row // Add calls
		want    [][]hv         // what each Add call emits
	}{
		{
			// PM2.5 35 µg/m³ for 12 hours: NowCast of a constant is the
			// constant, 35 lies in the 25–50 band: 50 + (100−50)/(50−25)·(35−25)
			// = 70. Hour 0 alone has no NowCast (it needs 2 of the last 3 hours).
			name: "PM2.5 constant for 12 hours",
			batches: [][]window.Row{
				steady("a", PM25, 0, 11, 35),
				one(minuteRow("a", PM25, 12, 0, 35)),
			},
			want: [][]hv{
				{{"a", 1, 70}, {"a", 2, 70}, {"a", 3, 70}, {"a", 4, 70}, {"a", 5, 70}, {"a", 6, 70}, {"a", 7, 70}, {"a", 8, 70}, {"a", 9, 70}, {"a", 10, 70}},
				{{"a", 11, 70}},
			},
		},
		{
			// VN_AQI needs PM2.5 or PM10: a gas-only station has no index.
			name:    "gas-only station",
			batches: [][]window.Row{join(steady("g", O3, 0, 3, 250), steady("g", NO2, 0, 3, 150))},
			want:    [][]hv{nil},
		},
		{
			// PM2.5 20: 50/25·20 = 40. O3 uses the hour's own mean: hour 1
			// has 1000 (band 800–1000: 300 + 100/200·200 = 400), hour 2 has
			// (200+300)/2 = 250 (band 200–300: 100 + 50/100·50 = 125); hour 1's
			// 1000 does not carry into hour 2.
			name: "gases use the 1 h mean",
			batches: [][]window.Row{join(
				steady("a", PM25, 0, 3, 20),
				one(minuteRow("a", O3, 1, 10, 1000)),
				one(minuteRow("a", O3, 2, 10, 200)), one(minuteRow("a", O3, 2, 40, 300)),
			)},
			want: [][]hv{{{"a", 1, 400}, {"a", 2, 125}}},
		},
		{
			// PM2.5 35 → 70, PM10 100 → 50 + 50/100·50 = 75, NO2 150 → 75,
			// SO2 390 → 100 + 50/200·40 = 110: the maximum is SO2's 110.
			name: "maximum over pollutants",
			batches: [][]window.Row{join(
				steady("a", PM25, 0, 2, 35), steady("a", PM10, 0, 2, 100),
				steady("a", NO2, 0, 2, 150), steady("a", SO2, 0, 2, 390),
			)},
			want: [][]hv{{{"a", 1, 110}}},
		},
		{
			// The hourly mean is Σsum/Σcount: (90 + 50)/(3 + 1) = 35 → 70,
			// not the mean of minute means (30 + 50)/2 = 40 → 80.
			name: "hourly mean weights minutes by count",
			batches: [][]window.Row{{
				minuteRows("a", PM25, 0, 0, 90, 3), minuteRows("a", PM25, 0, 1, 50, 1),
				minuteRows("a", PM25, 1, 0, 90, 3), minuteRows("a", PM25, 1, 1, 50, 1),
				minuteRow("a", PM25, 2, 0, 35),
			}},
			want: [][]hv{{{"a", 1, 70}}},
		},
		{
			// Hour 1 is due only on a final pollutant row of the same station
			// at hour 2 or later; early rows, other stations, other event
			// types and the "events" metric do not move it on.
			name: "emitted only when the station moves on",
			batches: [][]window.Row{
				steady("a", PM25, 0, 1, 35),
				one(minuteRow("a", PM25, 1, 59, 35)),
				one(func() window.Row { r := minuteRow("a", PM25, 2, 0, 35); r.Final = false; return r }()),
				one(minuteRow("b", PM25, 5, 0, 35)),
				one(func() window.Row { r := minuteRow("a", "temperature", 2, 0, 30); r.Type = "weather"; return r }()),
				one(func() window.Row { r := minuteRow("a", window.EventsMetric, 2, 0, 1); return r }()),
				one(minuteRow("a", PM25, 2, 0, 35)),
				one(minuteRow("a", PM25, 2, 1, 35)),
			},
			want: [][]hv{nil, nil, nil, nil, nil, nil, {{"a", 1, 70}}, nil},
		},
		{
			// A non-final row, a 5-minute row, a weather row and a non-pollutant
			// metric carrying 500 would each change hour 1 if counted.
			name: "non-final and non-air-quality rows ignored",
			batches: [][]window.Row{join(
				steady("a", PM25, 0, 1, 35),
				one(func() window.Row { r := minuteRow("a", PM25, 1, 5, 500); r.Final = false; return r }()),
				one(func() window.Row { r := minuteRow("a", PM25, 1, 5, 500); r.SizeMs = 5 * minuteMs; return r }()),
				one(func() window.Row { r := minuteRow("a", PM25, 1, 6, 500); r.Type = "weather"; return r }()),
				one(func() window.Row { r := minuteRow("a", PM25, 1, 7, 500); r.Kind = "traffic"; return r }()),
				one(minuteRow("a", "benzene", 1, 8, 500)),
				one(minuteRow("a", PM25, 2, 0, 35)),
			)},
			want: [][]hv{{{"a", 1, 70}}},
		},
		{
			// Hours 2 and 3 have no data: no rows. Hour 4 has data but only 1
			// of the last 3 hours (4, 3, 2): no NowCast, no row. Hour 5 has 5
			// and 4: NowCast of 35s is 35 → 70.
			name: "hours without data",
			batches: [][]window.Row{
				join(steady("a", PM25, 0, 1, 35), one(minuteRow("a", PM25, 4, 0, 35))),
				one(minuteRow("a", PM25, 5, 0, 35)),
				one(minuteRow("a", PM25, 6, 0, 35)),
			},
			want: [][]hv{{{"a", 1, 70}}, nil, {{"a", 5, 70}}},
		},
		{
			// Hour 2: 60, hour 1 missing, hour 0: 30. Two of the last three
			// hours suffice; w = 30/60 = 0.5 and the missing hour keeps its
			// weight: (60 + 0.25·30)/(1 + 0.25) = 54 → band 50–80:
			// 100 + 50/30·4 = 106.67 → 107.
			name: "a missing hour inside the 12",
			batches: [][]window.Row{join(
				steady("a", PM25, 0, 0, 30), steady("a", PM25, 2, 2, 60), one(minuteRow("a", PM25, 3, 0, 60)),
			)},
			want: [][]hv{{{"a", 2, 107}}},
		},
		{
			// Hours 0, 1, 2 at 38, 36, 40. Hour 1: w = 36/38,
			// (36 + 36)/(1 + 36/38) = 36.97 → 50 + 2·11.97 = 73.95 → 74.
			// Hour 2: w = 0.9, (40 + 0.9·36 + 0.81·38)/2.71 = 38.07 → 76.15 → 76.
			name: "NowCast weights",
			batches: [][]window.Row{join(
				steady("a", PM25, 0, 0, 38), steady("a", PM25, 1, 1, 36), steady("a", PM25, 2, 2, 40),
				one(minuteRow("a", PM25, 3, 0, 40)),
			)},
			want: [][]hv{{{"a", 1, 74}, {"a", 2, 76}}},
		},
		{
			// Minute 0, the only row of hour 1, is corrected from one reading
			// of 35 to two summing 100: the hour's mean becomes 50 (adding
			// would give 135/2 = 67.5). Hour 1: w = 35/50 = 0.7, (50 + 0.7·35)/1.7 = 43.82 →
			// 50 + 2·18.82 = 87.65 → 88. Hour 2 read hour 1 too:
			// (35 + 0.7·50 + 0.49·35)/2.19 = 39.79 → 79.59 → 80. Hour 3 is
			// not complete. The same correction again changes nothing.
			name: "a correction replaces the minute and re-emits",
			batches: [][]window.Row{
				hourly("a", PM25, 0, 3, 35),
				one(minuteRows("a", PM25, 1, 0, 100, 2)),
				one(minuteRows("a", PM25, 1, 0, 100, 2)),
				one(minuteRow("a", PM25, 4, 0, 35)),
			},
			// Hour 3 (35) reads 3, 2, 1, 0 = 35, 35, 50, 35: w = 0.7,
			// (35 + 0.7·35 + 0.49·50 + 0.343·35)/2.533 = 37.90 → 75.80 → 76.
			want: [][]hv{{{"a", 1, 70}, {"a", 2, 70}}, {{"a", 1, 88}, {"a", 2, 80}}, nil, {{"a", 3, 76}}},
		},
		{
			// A late first row in an empty, complete hour 2: hour 2 is emitted
			// now, and hour 3, whose NowCast reads it, again.
			name: "late data in an empty hour",
			batches: [][]window.Row{
				join(steady("a", PM25, 0, 1, 35), steady("a", PM25, 3, 4, 35)),
				one(minuteRow("a", PM25, 2, 0, 35)),
			},
			want: [][]hv{{{"a", 1, 70}, {"a", 3, 70}}, {{"a", 2, 70}, {"a", 3, 70}}},
		},
		{
			// The newest hour is 21. Hour 8 is 13 hours behind: ignored. Hour 9
			// is 12 behind: applied, and hours 9–20, whose NowCast read it, are
			// emitted again (35 twice has the same mean, so 70 stays).
			name: "correction reach",
			batches: [][]window.Row{
				steady("a", PM25, 0, 21, 35),
				one(minuteRows("a", PM25, 8, 0, 70, 2)),
				one(minuteRows("a", PM25, 9, 0, 70, 2)),
			},
			want: [][]hv{
				func() []hv {
					var w []hv
					for h := 1; h <= 20; h++ {
						w = append(w, hv{"a", h, 70})
					}
					return w
				}(),
				nil,
				{{"a", 9, 70}, {"a", 10, 70}, {"a", 11, 70}, {"a", 12, 70}, {"a", 13, 70}, {"a", 14, 70}, {"a", 15, 70}, {"a", 16, 70}, {"a", 17, 70}, {"a", 18, 70}, {"a", 19, 70}, {"a", 20, 70}},
			},
		},
		{
			// Output is ordered by station, then hour.
			name:    "several stations",
			batches: [][]window.Row{join(steady("b", PM25, 0, 2, 35), steady("a", PM25, 0, 2, 50))},
			want:    [][]hv{{{"a", 1, 100}, {"b", 1, 70}}},
		},
		{
			// Restored hours 0–2 (given newest first, over two calls) were
			// complete or current at restore: only hour 2 is emitted, on the
			// first row of hour 3, with NowCast over the restored hours:
			// hours 2, 1, 0 at 40, 36, 38 → 76 as in "NowCast weights".
			name: "restore",
			restore: [][]window.Row{
				steady("a", PM25, 2, 2, 40),
				join(steady("a", PM25, 1, 1, 36), steady("a", PM25, 0, 0, 38)),
			},
			batches: [][]window.Row{
				one(minuteRow("a", PM25, 2, 45, 40)),
				one(minuteRow("a", PM25, 3, 0, 40)),
			},
			want: [][]hv{nil, {{"a", 2, 76}}},
		},
		{
			// A correction after a restore re-emits the restored hours it
			// reaches: hour 1 to a mean of 50 gives 88 and 80 as in the
			// correction case.
			name:    "correction after restore",
			restore: [][]window.Row{hourly("a", PM25, 0, 3, 35)},
			batches: [][]window.Row{one(minuteRows("a", PM25, 1, 0, 100, 2))},
			want:    [][]hv{{{"a", 1, 88}, {"a", 2, 80}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.batches) != len(tt.want) {
				t.Fatalf("%d batches, %d wants", len(tt.batches), len(tt.want))
			}
			d := NewDeriver()
			for _, rows := range tt.restore {
				d.Restore(rows)
			}
			for i, rows := range tt.batches {
				got := summarise(t, d.Add(nil, rows))
				if !reflect.DeepEqual(got, tt.want[i]) {
					t.Errorf("batch %d: got %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestDeriverBandEdges(t *testing.T) {
	tests := []struct {
		p    string
		c    float64
		want int
	}{
		{PM25, 0, 0}, {PM25, 25, 50}, {PM25, 50, 100}, {PM25, 80, 150}, {PM25, 150, 200},
		{PM25, 500, 500}, {PM25, 900, 500},
		{PM10, 50, 50}, {PM10, 150, 100}, {PM10, 600, 500},
	}
	for _, tt := range tests {
		d := NewDeriver()
		got := summarise(t, d.Add(nil, join(steady("a", tt.p, 0, 1, tt.c), one(minuteRow("a", tt.p, 2, 0, tt.c)))))
		want := []hv{{"a", 1, tt.want}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %g: got %v, want %v", tt.p, tt.c, got, want)
		}
	}
}

func TestDeriverRow(t *testing.T) {
	d := NewDeriver()
	got := d.Add([]window.Row{{Metric: "kept"}}, join(steady("pm-kim-long", PM25, 0, 1, 35), one(minuteRow("pm-kim-long", PM25, 2, 0, 35))))
	want := []window.Row{
		{Metric: "kept"},
		{
			StartMs: at(1, 0), SizeMs: 3_600_000,
			Kind: "environment", Type: "air_quality", Metric: "vn_aqi", Area: "phu-xuan", Source: "pm-kim-long",
			Count: 1, Sum: 70, Min: 70, Max: 70, First: 70, Last: 70, Final: true,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// The same rows in any order inside one call give the same rows, with one
// row per station and hour (the store gives a whole batch one version).
func TestDeriverBatchOrder(t *testing.T) {
	rows := join(steady("a", PM25, 0, 5, 35), steady("b", PM10, 0, 5, 100), steady("a", NO2, 3, 4, 150))
	want := NewDeriver().Add(nil, rows)
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	got := NewDeriver().Add(nil, reversed)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reversed input: got %v, want %v", summarise(t, got), summarise(t, want))
	}
	seen := map[hv]bool{}
	for _, r := range summarise(t, got) {
		k := hv{r.src, r.hour, 0}
		if seen[k] {
			t.Errorf("hour %d of %s emitted twice", r.hour, r.src)
		}
		seen[k] = true
	}
}

func TestDeriverMemory(t *testing.T) {
	d := NewDeriver()
	for h := range 48 {
		var rows []window.Row
		for _, p := range Pollutants {
			for m := range 60 {
				rows = append(rows, minuteRow("a", p, h, m, 40))
			}
		}
		d.Add(nil, rows)
	}
	st := d.stations["a"]
	if int64(len(st.hours)) != keptHours+1 {
		t.Errorf("%d hours kept, want %d", len(st.hours), keptHours+1)
	}
	for h, slot := range st.hours {
		behind := (st.newest - h) / hourMs
		if behind > keptHours {
			t.Errorf("hour %d behind kept", behind)
		}
		if hasMinutes := slot.pol[0].minutes != nil; hasMinutes != (behind <= correctionHours) {
			t.Errorf("hour %d behind: minute cells kept = %v", behind, hasMinutes)
		}
	}
	if got := d.RestoreFromMs(at(47, 30)); got != at(47-int(keptHours), 0) {
		t.Errorf("RestoreFromMs = %d, want %d", got, at(47-int(keptHours), 0))
	}
}
