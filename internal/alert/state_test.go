package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func clearAt(v float64) *float64 { return &v }

// Kim Long ladder: BĐ1 1.0 info, BĐ2 2.0 warning, BĐ3 3.5 critical.
func kimLong(clear *float64, hold time.Duration) Threshold {
	return Threshold{Op: GreaterEqual, Clear: clear, For: hold,
		Levels: []Level{{Threshold: 1.0, Severity: Info}, {Threshold: 2.0, Severity: Warning}, {Threshold: 3.5, Severity: Critical}}}
}

// run feeds values one minute apart and renders the transitions.
func run(th Threshold, values ...float64) []string {
	tr := &Tracker{Fingerprint: "river_flood/kim-long"}
	var out []string
	for i, v := range values {
		if t, ok := tr.Observe(t0.Add(time.Duration(i)*time.Minute), v, th, true); ok {
			out = append(out, fmt.Sprintf("%d:%s/%s#%d", i, t.Status, t.Severity, t.Seq))
		}
	}
	return out
}

func TestTrackerTransitions(t *testing.T) {
	tests := []struct {
		name   string
		th     Threshold
		values []float64
		want   string
	}{
		{"fires at once without for", kimLong(nil, 0), []float64{0.5, 1.2}, "1:firing/info#1"},
		{"pending then firing after for", kimLong(nil, 2*time.Minute), []float64{1.2, 1.3, 1.4}, "2:firing/info#1"},
		{"pending resets when the value drops", kimLong(nil, 2*time.Minute), []float64{1.2, 0.9, 1.2, 1.3}, ""},
		{"escalates through the ladder", kimLong(nil, 0), []float64{1.2, 2.1, 3.6}, "0:firing/info#1 1:firing/warning#2 2:firing/critical#3"},
		{"jumps straight to critical", kimLong(nil, 0), []float64{0.2, 3.8}, "1:firing/critical#1"},
		{"de-escalates and resolves", kimLong(nil, 0), []float64{3.6, 2.5, 1.5, 0.8},
			"0:firing/critical#1 1:firing/warning#2 2:firing/info#3 3:resolved/info#4"},
		// Hysteresis: clear 0.8 gives a 0.2 margin on every rung.
		{"hysteresis holds the level", kimLong(clearAt(0.8), 0), []float64{2.1, 1.9, 1.85, 1.79, 0.9, 0.81, 0.8},
			"0:firing/warning#1 3:firing/info#2 6:resolved/info#3"},
		{"flapping input without clear flaps", kimLong(nil, 0), []float64{1.01, 0.99, 1.01, 0.99},
			"0:firing/info#1 1:resolved/info#2 2:firing/info#1 3:resolved/info#2"},
		{"flapping input with clear holds one alert", kimLong(clearAt(0.9), 0), []float64{1.01, 0.99, 1.01, 0.99, 1.02},
			"0:firing/info#1"},
		{"falling rule (speed <= 16)", Threshold{Op: LessEqual, Levels: []Level{{Threshold: 16, Severity: Warning}, {Threshold: 8, Severity: Critical}}, Clear: clearAt(20)},
			[]float64{30, 15, 7, 12, 19, 21}, "1:firing/warning#1 2:firing/critical#2 3:firing/warning#3 5:resolved/warning#4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.th.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(run(tt.th, tt.values...), " "); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestEpisodeIDs(t *testing.T) {
	th := kimLong(nil, 0)
	tr := &Tracker{Fingerprint: "fp"}
	a, _ := tr.Observe(t0, 1.5, th, true)
	b, _ := tr.Observe(t0.Add(time.Minute), 2.5, th, true)
	c, _ := tr.Observe(t0.Add(2*time.Minute), 0.5, th, true)
	d, _ := tr.Observe(t0.Add(3*time.Minute), 1.5, th, true)
	if a.ID == "" || a.ID != b.ID || b.ID != c.ID {
		t.Fatalf("one episode, one id: %s %s %s", a.ID, b.ID, c.ID)
	}
	if d.ID == a.ID || d.Seq != 1 {
		t.Fatalf("a new episode needs a new id and seq 1: %+v", d)
	}
	if !c.EndsAt.Equal(t0.Add(2*time.Minute)) || !c.StartsAt.Equal(t0) || !b.EndsAt.IsZero() {
		t.Fatalf("startsAt/endsAt: %+v %+v", b, c)
	}
	again := (&Tracker{Fingerprint: "fp"})
	e, _ := again.Observe(t0, 1.5, th, true)
	if e.ID != a.ID {
		t.Fatal("the id must be a function of fingerprint and start, so a rebuild names the same episode")
	}
}

func TestThresholdValidate(t *testing.T) {
	tests := []struct {
		name string
		th   Threshold
		want string
	}{
		{"bad op", Threshold{Op: "=>", Levels: []Level{{Threshold: 1, Severity: Info}}}, "op"},
		{"no levels", Threshold{Op: Greater}, "at least one level"},
		{"ladder out of order", Threshold{Op: Greater, Levels: []Level{{Threshold: 2, Severity: Info}, {Threshold: 1, Severity: Warning}}}, "beyond"},
		{"falling ladder out of order", Threshold{Op: Less, Levels: []Level{{Threshold: 10, Severity: Info}, {Threshold: 20, Severity: Warning}}}, "beyond"},
		{"clear on the wrong side", Threshold{Op: Greater, Levels: []Level{{Threshold: 2, Severity: Info}}, Clear: clearAt(3)}, "safe side"},
	}
	for _, tt := range tests {
		if err := tt.th.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}
