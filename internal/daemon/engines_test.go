package daemon

import (
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/event"
)

// TestEnginesFanOut: a reload reaches every live engine (one per owned
// partition), a new one starts with the current rules, and an
// acknowledgement reaches the engine that owns the alert.
func TestEnginesFanOut(t *testing.T) {
	parse := func(y string) []alert.Rule {
		r, err := alert.ParseRules([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	fire := parse(`rules:
  - {name: fire, kind: event, match: {kind: camera, type: fire}, severity: critical, resolve_after: 15m}
`)
	both := parse(`rules:
  - {name: fire, kind: event, match: {kind: camera, type: fire}, severity: critical, resolve_after: 15m}
  - {name: smoke, kind: event, match: {kind: camera, type: smoke}, severity: warning, resolve_after: 15m}
`)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e := &engines{rules: fire, set: map[*alert.Engine]struct{}{}}
	a := alert.NewEngine(alert.EngineConfig{Now: clock}, e.current())
	b := alert.NewEngine(alert.EngineConfig{Now: clock}, e.current())
	e.add(a)
	e.add(b)
	e.SetRules(both)
	for _, eng := range []*alert.Engine{a, b} {
		eng.Tick(now.UnixMilli())
		if got := eng.Rules(); len(got) != 2 {
			t.Fatalf("an engine runs %v after the reload", got)
		}
	}
	if c := alert.NewEngine(alert.EngineConfig{Now: clock}, e.current()); len(c.Rules()) != 2 {
		t.Fatal("a partition taken over later must start with the reloaded rules")
	}

	// Engine a owns the camera; an acknowledgement sent to all reaches it.
	ev := &event.Event{ID: "f1", Kind: "camera", Type: "fire", Source: "cam-1", Area: "phu-hoi", TimeMs: now.UnixMilli()}
	a.Event(ev, now.UnixMilli())
	fired := a.Take(nil)
	if len(fired) != 1 {
		t.Fatalf("fired %d", len(fired))
	}
	e.Act(fired[0].Fingerprint, alert.Action{Kind: alert.ActionAck, Actor: "Lan", Role: "operator", Comment: "đã xử lý"})
	a.Tick(now.UnixMilli())
	b.Tick(now.UnixMilli())
	if got := a.Take(nil); len(got) != 1 || got[0].AcknowledgedBy != "Lan" || got[0].ID != fired[0].ID {
		t.Fatalf("the owner's acknowledgement: %+v", got)
	}
	if got := b.Take(nil); len(got) != 0 {
		t.Fatalf("an engine without the alert published %+v", got)
	}
	e.remove(b)
	e.SetRules(fire)
	b.Tick(now.UnixMilli())
	if len(b.Rules()) != 2 {
		t.Fatal("a removed engine must not get reloads any more")
	}
}
