package alert

import (
	"strings"
	"testing"
	"time"
)

// TestActions walks one episode through every operator action: each is a
// transition of the same id with the next seq, carrying its action; an
// escalation clears the acknowledgement and keeps the assignee and the
// comments; a restart from the last transition keeps them all; a resolve
// ends them with the episode.
func TestActions(t *testing.T) {
	e, w := newEngine(t, kimLongRule)
	feed := func(m int, v float64) []Alert {
		e.Windows(updates(paneRow("wl-kim-long", "kim-long", "height", m, v, true)))
		return e.Take(nil)
	}
	fired := feed(0, 1.2)
	if len(fired) != 1 {
		t.Fatal("no alert")
	}
	fp, id := fired[0].Fingerprint, fired[0].ID
	seq := fired[0].Seq
	act := func(a Action) *Alert {
		t.Helper()
		w.t = w.t.Add(time.Second)
		a.Role = "operator"
		e.Act(fp, a)
		e.Tick(w.t.UnixMilli())
		got := e.Take(nil)
		if len(got) == 0 {
			return nil
		}
		if len(got) != 1 || got[0].ID != id || got[0].Seq != seq+1 || got[0].Action == nil || got[0].Action.Kind != a.Kind ||
			!got[0].EvalTime.Equal(fired[0].EvalTime) {
			t.Fatalf("%s: %s", a.Kind, brief(got))
		}
		seq++
		return &got[0]
	}
	steps := []struct {
		name   string
		action Action
		check  func(a *Alert) bool // nil: nothing published
	}{
		{"ack", Action{Kind: ActionAck, Actor: "lan", Comment: "đã thấy"}, func(a *Alert) bool {
			return a.AcknowledgedBy == "lan" && a.AckComment == "đã thấy" && a.Comments == 0
		}},
		{"same ack again", Action{Kind: ActionAck, Actor: "lan", Comment: "đã thấy"}, nil},
		{"assign", Action{Kind: ActionAssign, Actor: "lan", To: "pccc-hue"}, func(a *Alert) bool {
			return a.Assignee == "pccc-hue" && a.AssignedBy == "lan" && a.AssignedAt != nil && a.AcknowledgedBy == "lan"
		}},
		{"comment", Action{Kind: ActionComment, Actor: "minh", Comment: "<script>x</script>"}, func(a *Alert) bool {
			return a.Comments == 1 && a.Action.Comment == "<script>x</script>" && a.Assignee == "pccc-hue"
		}},
		{"second comment", Action{Kind: ActionComment, Actor: "lan", Comment: "xe đã tới"}, func(a *Alert) bool { return a.Comments == 2 }},
		{"unack", Action{Kind: ActionUnack, Actor: "minh"}, func(a *Alert) bool {
			return a.AcknowledgedBy == "" && a.AcknowledgedAt == nil && a.Assignee == "pccc-hue" && a.Comments == 2
		}},
		{"unack again", Action{Kind: ActionUnack, Actor: "minh"}, nil},
		{"ack after unack", Action{Kind: ActionAck, Actor: "minh"}, func(a *Alert) bool { return a.AcknowledgedBy == "minh" }},
	}
	for _, st := range steps {
		got := act(st.action)
		if (got == nil) != (st.check == nil) || got != nil && !st.check(got) {
			t.Fatalf("%s: %+v", st.name, got)
		}
	}
	// An escalation asks for a new look by whoever is assigned.
	up := feed(1, 2.2)
	if len(up) != 1 || up[0].Severity != Warning || up[0].AcknowledgedBy != "" || up[0].Assignee != "pccc-hue" ||
		up[0].Comments != 2 || up[0].Action != nil {
		t.Fatalf("escalation: %+v", up)
	}
	seq++
	// A restart from that transition keeps the assignee and the count.
	restarted, _ := newEngine(t, kimLongRule)
	restarted.Restore(up)
	for m, v := range []float64{1.2, 2.2} {
		r := paneRow("wl-kim-long", "kim-long", "height", m, v, true)
		restarted.RestorePane(&r)
	}
	restarted.Act(fp, Action{Kind: ActionComment, Actor: "lan", Role: "operator", Comment: "sau khởi động lại", At: w.t})
	restarted.Tick(w.t.UnixMilli())
	got := restarted.Take(nil)
	if len(got) != 1 || got[0].Seq != seq+1 || got[0].Comments != 3 || got[0].Assignee != "pccc-hue" {
		t.Fatalf("after a restart: %s %+v", brief(got), got)
	}
	// The resolve ends them: the next episode starts afresh.
	var end []Alert
	for m := 2; m < 40 && len(end) == 0; m++ {
		end = feed(m, 0.5)
	}
	if len(end) != 1 || end[0].Status != StatusResolved {
		t.Fatalf("no resolve: %s", brief(end))
	}
	again := feed(40, 1.2)
	if len(again) != 1 || again[0].ID == id || again[0].Assignee != "" || again[0].Comments != 0 || again[0].AcknowledgedBy != "" {
		t.Fatalf("next episode: %+v", again)
	}
	// An action on an alert that is not firing publishes nothing.
	e.Act("no-such-fingerprint", Action{Kind: ActionComment, Actor: "x", Comment: "y"})
	e.Tick(w.t.UnixMilli())
	if got := e.Take(nil); len(got) != 0 {
		t.Fatalf("acted on nothing: %s", brief(got))
	}
}

func TestActionValidate(t *testing.T) {
	tests := []struct {
		name string
		a    Action
		want string // "" = valid
	}{
		{"ack", Action{Kind: ActionAck, Actor: "lan"}, ""},
		{"assign", Action{Kind: ActionAssign, Actor: "lan", To: "pccc-hue"}, ""},
		{"unassign", Action{Kind: ActionAssign, Actor: "lan"}, ""},
		{"comment", Action{Kind: ActionComment, Actor: "lan", Comment: strings.Repeat("ế", MaxCommentRunes)}, ""},
		{"unknown kind", Action{Kind: "close", Actor: "lan"}, "unknown action"},
		{"no actor", Action{Kind: ActionAck}, "needs an actor"},
		{"empty comment", Action{Kind: ActionComment, Actor: "lan"}, "must not be empty"},
		{"long comment", Action{Kind: ActionComment, Actor: "lan", Comment: strings.Repeat("x", MaxCommentRunes+1)}, "at most 2000"},
		{"long assignee", Action{Kind: ActionAssign, Actor: "lan", To: strings.Repeat("x", MaxAssigneeRunes+1)}, "at most 100"},
		{"to on ack", Action{Kind: ActionAck, Actor: "lan", To: "x"}, `only assign`},
		{"bad UTF-8", Action{Kind: ActionComment, Actor: "lan", Comment: "\xff"}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
