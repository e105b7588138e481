package broker

import (
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
)

// TestAlertMsgRoundTrip: what a restart needs of a transition survives the
// message: its seq, its eval time and whether it was an early decision.
func TestAlertMsgRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
	for _, early := range []bool{false, true} {
		a := alert.Alert{ID: "5f0c", Fingerprint: "9a1e", Rule: "river", Status: alert.StatusFiring, Severity: alert.Warning,
			Kind: "environment", Area: "kim-long", Seq: 3, EvalTime: at, UpdatedAt: at.Add(time.Second), Early: early}
		msg, err := AlertMsg(&a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseAlert(msg.Data, msg.Header)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != 3 || !got.EvalTime.Equal(at) || got.Early != early || got.MsgID() != "5f0c:3" {
			t.Fatalf("early %v: read back %+v", early, got)
		}
	}
}

// TestAlertMsgCarriesActionAndSilence: the operator's action survives the
// message (the alert_actions row is written from it, also after a
// restart), and a silenced transition says so in a header.
func TestAlertMsgCarriesActionAndSilence(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		name     string
		action   *alert.Action
		silenced []string
	}{
		{"decision", nil, nil},
		{"comment", &alert.Action{Kind: alert.ActionComment, Actor: "lan", Role: "operator", Comment: "<b>đã gọi</b>", At: at}, nil},
		{"assign silenced", &alert.Action{Kind: alert.ActionAssign, Actor: "lan", Role: "admin", To: "pccc-hue", At: at}, []string{"s1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := alert.Alert{ID: "5f0c", Fingerprint: "9a1e", Status: alert.StatusFiring, Severity: alert.Warning, Seq: 2,
				EvalTime: at, Action: tt.action, SilencedBy: tt.silenced}
			msg, err := AlertMsg(&a)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Header.Get(HeaderSilenced) == "true"; got != (len(tt.silenced) > 0) {
				t.Fatalf("%s header %q", HeaderSilenced, msg.Header.Get(HeaderSilenced))
			}
			got, err := parseAlert(msg.Data, msg.Header)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Action == nil) != (tt.action == nil) || got.Action != nil && *got.Action != *tt.action {
				t.Fatalf("action read back %+v, want %+v", got.Action, tt.action)
			}
		})
	}
}
