package alert

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

func hueEngine(b *testing.B) *Engine {
	data, err := os.ReadFile("../../deployments/rules/hue.yaml")
	if err != nil {
		b.Fatal(err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		b.Fatal(err)
	}
	return NewEngine(EngineConfig{}, rules)
}

// BenchmarkEngineEvent: the per-event cost on the hot path with the Huế
// rule pack (event rules, absence rules), for an event no rule fires on.
func BenchmarkEngineEvent(b *testing.B) {
	e := hueEngine(b)
	evs := make([]event.Event, 300)
	for i := range evs {
		evs[i] = event.Event{ID: "x", Kind: "environment", Type: "water_level", Source: fmt.Sprintf("s%d", i), Area: "kim-long",
			MetricNames: []string{"height"}, MetricValues: []float64{1}}
	}
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &evs[i%len(evs)]
		ev.TimeMs = now - int64(b.N-i)
		e.Event(ev, now)
	}
}

// BenchmarkEngineDayOfRain: a day of 1-minute panes from 40 rain gauges
// through the three rain rules (3 h, 12 h and 24 h sums), a pane at a time
// as in live traffic; reported per pane.
func BenchmarkEngineDayOfRain(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e := hueEngine(b)
		rows := make([]window.Row, 40)
		for m := 0; m < 1440; m++ {
			for g := range rows {
				rows[g] = window.Row{StartMs: base.Add(time.Duration(m) * time.Minute).UnixMilli(), SizeMs: 60_000,
					Kind: "environment", Type: "rainfall", Metric: "precipitation", Area: fmt.Sprintf("a%d", g), Source: fmt.Sprintf("rg%d", g),
					Count: 1, Sum: 0.5, Min: 0.5, Max: 0.5, First: 0.5, Last: 0.5, Final: true}
			}
			e.Windows(updates(rows...))
			e.Take(nil)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1440*40), "ns/pane")
}
