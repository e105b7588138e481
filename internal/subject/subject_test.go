package subject

import "testing"

func TestParseEvent(t *testing.T) {
	for _, tt := range []struct {
		in                 string
		kind, area, source string
		ok                 bool
	}{
		{"ioc.events.environment.kim-long.wl-kim-long", "environment", "kim-long", "wl-kim-long", true},
		{Event("camera", "phu-hoi", "cam-01"), "camera", "phu-hoi", "cam-01", true},
		{"ioc.events.environment.kim-long", "environment", "", "", false},
		{"ioc.events.environment", "environment", "", "", false},
		{"ioc.events.a.b.c.d", "", "", "", false},
		{"ioc.events.", "", "", "", false},
		{"ioc.alerts.warning.environment.kim-long", "", "", "", false},
		{"ioc.events.a..c", "a", "", "c", true},
	} {
		kind, area, source, ok := ParseEvent(tt.in)
		if kind != tt.kind || area != tt.area || source != tt.source || ok != tt.ok {
			t.Errorf("%q: got %q %q %q %v", tt.in, kind, area, source, ok)
		}
	}
}

func TestPublished(t *testing.T) {
	for in, want := range map[string]string{
		Partitioned(8) + "5.environment.kim-long.wl-kim-long": "ioc.events.environment.kim-long.wl-kim-long",
		"ioc.events.environment.kim-long.wl-kim-long":         "ioc.events.environment.kim-long.wl-kim-long",
		"ioc.part.8": "ioc.part.8",
	} {
		if got := Published(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if got := Alert("critical", "environment", "kim-long"); got != "ioc.alerts.critical.environment.kim-long" {
		t.Errorf("alert subject %q", got)
	}
	if got := DeadLetter("camera"); got != "ioc.dlq.camera" {
		t.Errorf("dead-letter subject %q", got)
	}
}
