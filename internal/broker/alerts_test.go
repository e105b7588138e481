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
