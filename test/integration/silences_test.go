//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMaintenanceWindowSilence: a station under maintenance goes silent
// inside a silence. Its absence alert still fires and resolves, published
// and stored with silencedBy and Ioc-Silenced; after the window ends it
// alerts again, unsilenced. A silence created or expired while an alert
// fires marks or unmarks it on the board at once, without a transition.
// Every create and expire is an alert_actions row of the token's name.
func TestMaintenanceWindowSilence(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: station_silent
    kind: absence
    match: {kind: environment}
    after: 4s
    severity: warning
`), 0o644); err != nil {
		t.Fatal(err)
	}
	db, conn := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_RULES="+rules,
		"IOC_HTTP_TOKENS=lan:operator=tok-lan-0123456789,minh:viewer=tok-minh-0123456789")
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	lan := apiClient{t, d.http, "tok-lan-0123456789"}
	minh := apiClient{t, d.http, "tok-minh-0123456789"}

	var n atomic.Int64
	reading := func(source string) {
		s := sample{id: fmt.Sprintf("%s-%d", source, n.Add(1)), kind: "environment", typ: "air_quality", source: source,
			area: "phu-bai", timeMs: time.Now().UnixMilli(), metrics: map[string]float64{"pm25": 20}}
		publishFromGoroutine(t, js, message{subject: subjectOf(s), data: encode(s), msgID: s.id}) // also the heartbeat's
	}
	// A station that keeps talking drives the engine's clock.
	stop := make(chan struct{})
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
				reading("aq-beat")
			}
		}
	}()
	defer func() { close(stop); <-beat }()
	reading("aq-phu-bai-1")

	// Who may silence, and what a silence may be.
	window := 20 * time.Second
	start := time.Now().UTC()
	silenceBody := func(matchers string, ends time.Time) string {
		return fmt.Sprintf(`{"matchers": %s, "startsAt": %q, "endsAt": %q, "comment": "bảo trì trạm <b>Phú Bài</b>"}`,
			matchers, start.Format(time.RFC3339Nano), ends.Format(time.RFC3339Nano))
	}
	station := `[{"name": "source", "value": "aq-phu-bai-1", "isRegex": false, "isEqual": true}]`
	minh.must("POST", "/api/v1/silences", silenceBody(station, start.Add(window)), http.StatusForbidden)
	for _, bad := range []string{
		silenceBody(`[{"name": "station", "value": "x", "isRegex": false, "isEqual": true}]`, start.Add(window)),
		silenceBody(`[{"name": "source", "value": "(", "isRegex": true, "isEqual": true}]`, start.Add(window)),
		silenceBody(`[]`, start.Add(window)),
		silenceBody(station, start.Add(31*24*time.Hour)),
		silenceBody(station, start.Add(-time.Hour)),
	} {
		lan.must("POST", "/api/v1/silences", bad, http.StatusBadRequest)
	}
	var created struct{ SilenceID string }
	if err := json.Unmarshal(lan.must("POST", "/api/v1/silences", silenceBody(station, start.Add(window)), http.StatusCreated),
		&created); err != nil || created.SilenceID == "" {
		t.Fatalf("create: %v %+v", err, created)
	}
	sid := created.SilenceID

	// The station is silent inside the window: the alert fires, silenced.
	var fired storedAlert
	var header string
	waitFor(t, 30*time.Second, "the silenced absence alert on IOC_ALERTS", func() (bool, string) {
		for _, m := range readAlerts(t, js) {
			if m.Source == "aq-phu-bai-1" && m.Status == "firing" {
				fired, header = m, m.silenced
				return true, ""
			}
		}
		return false, "not yet"
	})
	if header != "true" || strings.Join(fired.SilencedBy, ",") != sid {
		t.Fatalf("the firing transition in the window: Ioc-Silenced %q, silencedBy %v, want %s", header, fired.SilencedBy, sid)
	}
	minh.waitAlert(fired.Fingerprint, "the silenced alert on the board", func(a operatorAlert) bool {
		return strings.Join(a.SilencedBy, ",") == sid
	})
	// It comes back within the window: resolved, silenced too.
	reading("aq-phu-bai-1")
	waitFor(t, 20*time.Second, "the silenced resolve", func() (bool, string) {
		for _, m := range readAlerts(t, js) {
			if m.ID == fired.ID && m.Status == "resolved" {
				return m.silenced == "true" && strings.Join(m.SilencedBy, ",") == sid, fmt.Sprintf("resolved: %q %v", m.silenced, m.SilencedBy)
			}
		}
		return false, "not resolved yet"
	})
	// After the window the same silence alerts as usual.
	waitFor(t, window+10*time.Second, "the window to end", func() (bool, string) {
		var list []struct {
			ID     string
			Status struct{ State string }
		}
		_ = json.Unmarshal(minh.must("GET", "/api/v1/silences", "", http.StatusOK), &list)
		return len(list) == 1 && list[0].ID == sid && list[0].Status.State == "expired", fmt.Sprintf("%+v", list)
	})
	// (Silent again since it came back, it may be firing once more, from
	// inside the window: this reading ends that.)
	seen := len(readAlerts(t, js))
	reading("aq-phu-bai-1")
	var again storedAlert
	waitFor(t, 30*time.Second, "the absence alert after the window", func() (bool, string) {
		for _, m := range readAlerts(t, js)[seen:] {
			if m.Source == "aq-phu-bai-1" && m.Status == "firing" {
				again = m
				return true, ""
			}
		}
		return false, "not yet"
	})
	if again.silenced != "" || len(again.SilencedBy) != 0 {
		t.Fatalf("after the window: Ioc-Silenced %q, silencedBy %v", again.silenced, again.SilencedBy)
	}

	// A silence made while it fires marks it at once; expiring it unmarks
	// it; neither is a transition.
	before := len(readAlerts(t, js))
	rule := `[{"name": "rule", "value": "station_.*", "isRegex": true, "isEqual": true}, ` +
		`{"name": "source", "value": "aq-beat", "isRegex": false, "isEqual": false}]`
	if err := json.Unmarshal(lan.must("POST", "/api/v1/silences", silenceBody(rule, time.Now().Add(time.Hour)), http.StatusCreated),
		&created); err != nil {
		t.Fatal(err)
	}
	minh.waitAlert(again.Fingerprint, "the new silence on the firing alert", func(a operatorAlert) bool {
		return strings.Join(a.SilencedBy, ",") == created.SilenceID
	})
	lan.must("DELETE", "/api/v1/silences/"+created.SilenceID, "", http.StatusOK)
	lan.must("DELETE", "/api/v1/silences/"+created.SilenceID, "", http.StatusConflict)
	lan.must("DELETE", "/api/v1/silences/nope", "", http.StatusNotFound)
	minh.waitAlert(again.Fingerprint, "the expired silence off the firing alert", func(a operatorAlert) bool {
		return len(a.SilencedBy) == 0
	})
	if after := len(readAlerts(t, js)); after != before {
		t.Errorf("silencing a firing alert published %d transitions", after-before)
	}

	// The audit trail: two creates and one expire, by lan.
	waitFor(t, 30*time.Second, "the silences' alert_actions rows", func() (bool, string) {
		rows, err := conn.Query(context.Background(), "SELECT action, alert_id, actor, role, comment FROM "+db+
			".alert_actions FINAL WHERE fingerprint = '' ORDER BY at, action")
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var action, id, actor, role, comment string
			if err := rows.Scan(&action, &id, &actor, &role, &comment); err != nil {
				return false, err.Error()
			}
			got = append(got, fmt.Sprintf("%s %v %s/%s", action, id == sid, actor, role))
		}
		want := "[silence true lan/operator silence false lan/operator unsilence false lan/operator]"
		return fmt.Sprint(got) == want, fmt.Sprintf("rows %v, want %s", got, want)
	})
	checkAlertInvariants(t, js, conn, db)
}
