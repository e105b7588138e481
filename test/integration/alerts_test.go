//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/test/testenv"
)

// storedAlert is one message of IOC_ALERTS.
type storedAlert struct {
	subject, msgID string
	silenced       string   // the Ioc-Silenced header
	ID             string   `json:"id"`
	Fingerprint    string   `json:"fingerprint"`
	Rule           string   `json:"rule"`
	Status         string   `json:"status"`
	Severity       string   `json:"severity"`
	Area           string   `json:"area"`
	Source         string   `json:"source"`
	Value          float64  `json:"value"`
	Threshold      float64  `json:"threshold"`
	EndsAt         *string  `json:"endsAt"`
	Summary        string   `json:"summary"`
	AcknowledgedBy string   `json:"acknowledgedBy"`
	SilencedBy     []string `json:"silencedBy"`
	// From the headers: the seq of Nats-Msg-Id (<id>:<seq>) and Ioc-Eval-Time.
	Seq      int    `json:"-"`
	EvalTime string `json:"-"`
}

// readAlerts returns every message stored in IOC_ALERTS, in stream order.
func readAlerts(t *testing.T, js jetstream.JetStream) []storedAlert {
	t.Helper()
	s := mustStream(t, js, "IOC_ALERTS")
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []storedAlert
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("IOC_ALERTS seq %d: %v", seq, err)
		}
		var a storedAlert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatalf("IOC_ALERTS seq %d is not an alert: %v: %s", seq, err, m.Data)
		}
		a.subject, a.msgID, a.silenced = m.Subject, m.Header.Get("Nats-Msg-Id"), m.Header.Get("Ioc-Silenced")
		a.Seq, _ = strconv.Atoi(a.msgID[strings.LastIndexByte(a.msgID, ':')+1:])
		a.EvalTime = m.Header.Get("Ioc-Eval-Time")
		out = append(out, a)
	}
	return out
}

func ofRule(alerts []storedAlert, rule string) []storedAlert {
	var out []storedAlert
	for _, a := range alerts {
		if a.Rule == rule {
			out = append(out, a)
		}
	}
	return out
}

func liveAlerts(t *testing.T, addr string) []storedAlert {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var live []storedAlert
	if err := json.NewDecoder(resp.Body).Decode(&live); err != nil {
		t.Fatal(err)
	}
	return live
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestFloodScenarioAlerts runs 8 simulated hours of the flood scenario
// through iocd. The river alarms at Kim Long and Phú Ốc must climb and
// descend their ladders as exactly one alert each, while mid-stream the
// rules file is broken (the old rules keep running), fixed and reloaded,
// and iocd is SIGKILLed and restarted with its alerts firing. Nothing may
// be published twice, and nothing lost: every alert id's transitions are
// 1..n without a gap, on the contract's subjects, and in the alerts table.
func TestFloodScenarioAlerts(t *testing.T) {
	db, conn := testDB(t)
	ns := startNATS(t)
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	hue, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deployments", "rules", "hue.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeRules := func(body string) {
		t.Helper()
		// Written aside and renamed, as editors and ConfigMaps do.
		tmp := rulesFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, rulesFile); err != nil {
			t.Fatal(err)
		}
	}
	writeRules(string(hue))
	d := newIOCD(t, ns.url(), db, "IOC_RULES="+rulesFile)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	start := time.Now().Add(-9 * time.Hour).Truncate(time.Minute)
	gen, err := sim.New(sim.Config{Seed: 7, Start: start, Scenario: sim.ScenarioFlood})
	if err != nil {
		t.Fatal(err)
	}
	end := start.Add(8 * time.Hour)

	reloaded, killed := false, false
	act := func() {
		seen := ofRule(readAlerts(t, js), "river_level_kim_long")
		has := func(sev string) bool {
			for _, a := range seen {
				if a.Severity == sev && a.Status == "firing" {
					return true
				}
			}
			return false
		}
		if !reloaded && has("info") {
			reloaded = true
			// A broken file: the running rules stay, the metric says so.
			writeRules(string(hue) + "\n  - name: broken\n    kind: threshold\n    window: 7s\n")
			waitFor(t, 20*time.Second, "the broken rules file to be refused", func() (bool, string) {
				return strings.Contains(metricsText(t, d.http), "ioc_rules_last_reload_success 0"), "metric not 0 yet"
			})
			// A good edit of other rules: the river alarm keeps its state.
			edited := strings.Replace(string(hue), "threshold: 70\n", "threshold: 72\n", 1) +
				"  - {name: reload_marker, kind: event, match: {kind: camera, type: no_such_type}, severity: info, resolve_after: 1m}\n"
			writeRules(edited)
			waitFor(t, 20*time.Second, "the edited rules file to be loaded", func() (bool, string) {
				m := metricsText(t, d.http)
				return strings.Contains(m, "ioc_rules_last_reload_success 1") && strings.Contains(m, "ioc_rules_loaded 19"), "not reloaded yet"
			})
		}
		if !killed && has("warning") {
			killed = true
			d.kill()
			t.Logf("SIGKILL with %d Kim Long transitions stored", len(seen))
			d.start()
		}
	}

	var chunk []message
	sent := 0
	for gen.NextTime().Before(end) {
		m := gen.Next()
		chunk = append(chunk, message{subject: m.Subject, data: m.Data, msgID: m.MsgID})
		if len(chunk) == 10_000 {
			publish(t, js, chunk)
			sent += len(chunk)
			chunk = chunk[:0]
			act()
		}
	}
	publish(t, js, chunk)
	sent += len(chunk)
	waitDrained(t, js)
	act()
	if !reloaded || !killed {
		t.Fatalf("the scenario never reached the reload (%v) or the kill (%v)", reloaded, killed)
	}
	// After the last event the idle timeout finalises the last panes.
	waitFor(t, 30*time.Second, "both rivers' alarms to resolve", func() (bool, string) {
		all := readAlerts(t, js)
		var state []string
		done := true
		for _, rule := range []string{"river_level_kim_long", "river_level_phu_oc"} {
			seen := ofRule(all, rule)
			done = done && len(seen) > 0 && seen[len(seen)-1].Status == "resolved"
			state = append(state, fmt.Sprintf("%s: %d transitions", rule, len(seen)))
		}
		return done, strings.Join(state, ", ")
	})
	// An operator acknowledges a firing alert: a transition of the same id
	// carries who, on NATS and in the live view (which follows the stream).
	var live []storedAlert
	waitFor(t, 10*time.Second, "a firing alert on /api/v1/alerts", func() (bool, string) {
		live = liveAlerts(t, d.http)
		return len(live) > 0, "nothing firing to acknowledge"
	})
	target := live[0]
	resp, err := http.Post("http://"+d.http+"/api/v1/alerts/"+target.Fingerprint+"/ack", "application/json",
		strings.NewReader(`{"by": "trực ban Lan", "comment": "đã báo đội ứng cứu"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("acknowledge: %s", resp.Status)
	}
	waitFor(t, 10*time.Second, "the acknowledgement on NATS", func() (bool, string) {
		for _, a := range readAlerts(t, js) {
			if a.Fingerprint == target.Fingerprint && a.AcknowledgedBy == "trực ban Lan" && a.Status == "firing" {
				return true, ""
			}
		}
		return false, "not yet"
	})
	all := readAlerts(t, js)
	perRule := map[string]int{}
	for _, a := range all {
		perRule[a.Rule]++
	}
	t.Logf("%d messages published, %d alert transitions stored: %v", sent, len(all), perRule)
	logs, _ := os.ReadFile(d.logs)
	restored := regexp.MustCompile(`"alerts_firing":(\d+).*"alert engine restored"`).FindAllSubmatch(logs, -1)
	if len(restored) != 2 || string(restored[1][1]) == "0" {
		t.Fatalf("the restart must rebuild the firing alerts from IOC_ALERTS; restore log lines: %q", restored)
	}
	t.Logf("the restarted iocd rebuilt %s firing alerts", restored[1][1])

	for _, river := range []struct{ rule, area string }{{"river_level_kim_long", "kim-long"}, {"river_level_phu_oc", "huong-tra"}} {
		got := ofRule(all, river.rule)
		want := []struct{ status, severity string }{
			{"firing", "info"}, {"firing", "warning"}, {"firing", "critical"},
			{"firing", "warning"}, {"firing", "info"}, {"resolved", "info"},
		}
		var b strings.Builder
		for _, a := range got {
			fmt.Fprintf(&b, "%s/%s(%.2f) ", a.Status, a.Severity, a.Value)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d transitions, want BĐ1 → BĐ2 → BĐ3 → BĐ2 → BĐ1 → resolved: %s", river.rule, len(got), b.String())
		}
		for i, a := range got {
			if a.Status != want[i].status || a.Severity != want[i].severity || a.ID != got[0].ID ||
				a.msgID != fmt.Sprintf("%s:%d", a.ID, i+1) ||
				a.subject != fmt.Sprintf("ioc.alerts.%s.environment.%s", a.Severity, river.area) {
				t.Fatalf("%s transition %d: %+v; all: %s", river.rule, i+1, a, b.String())
			}
			if a.Status == "firing" && a.Value < a.Threshold {
				t.Errorf("%s transition %d: value %.2f below its threshold %.2f", river.rule, i+1, a.Value, a.Threshold)
			}
		}
		if last := got[len(got)-1]; last.EndsAt == nil || !strings.HasPrefix(last.Summary, "Đã kết thúc") {
			t.Errorf("%s: resolved transition without endsAt or summary: %+v", river.rule, last)
		}
		if !strings.Contains(got[1].Summary, "báo động 2") {
			t.Errorf("%s: summary %q does not name the alarm level", river.rule, got[1].Summary)
		}
	}

	checkAlertInvariants(t, js, conn, db)
	var kimLong uint64
	if err := conn.QueryRow(context.Background(),
		"SELECT count() FROM "+db+".alerts FINAL WHERE rule = 'river_level_kim_long' AND area = 'kim-long'").Scan(&kimLong); err != nil {
		t.Fatal(err)
	}
	if kimLong != 6 {
		t.Fatalf("alerts table: %d Kim Long rows, want 6", kimLong)
	}
	var category, labels, window string
	if err := conn.QueryRow(context.Background(), "SELECT category, labels, rule_window FROM "+db+
		".alerts FINAL WHERE rule = 'river_level_kim_long' AND seq = 2").Scan(&category, &labels, &window); err != nil ||
		category != "naturalDisaster" || !strings.Contains(labels, `"river":"huong"`) || window != "10m" {
		t.Fatalf("alerts table details: %v %q %q %q", err, category, labels, window)
	}
	var ackBy string
	if err := conn.QueryRow(context.Background(), "SELECT acknowledged_by FROM "+db+".alerts FINAL WHERE fingerprint = ? "+
		"AND acknowledged_by != '' LIMIT 1", target.Fingerprint).Scan(&ackBy); err != nil || ackBy != "trực ban Lan" {
		t.Fatalf("the acknowledgement is not in the alerts table: %v %q", err, ackBy)
	}

	// The live view, after the restart, shows exactly what still fires.
	waitFor(t, 10*time.Second, "the acknowledgement on /api/v1/alerts", func() (bool, string) {
		live = liveAlerts(t, d.http)
		for _, a := range live {
			if a.Fingerprint == target.Fingerprint && a.AcknowledgedBy == "trực ban Lan" {
				return true, ""
			}
		}
		return false, "not shown for " + target.Fingerprint
	})
	// The board follows the stream: it shows exactly the fingerprints whose
	// last transition fires.
	waitFor(t, 10*time.Second, "/api/v1/alerts to show what the stream says fires", func() (bool, string) {
		firing := map[string]bool{}
		for fp, a := range lastTransitions(readAlerts(t, js)) {
			if a.Status == "firing" {
				firing[fp] = true
			}
		}
		live = liveAlerts(t, d.http)
		if len(live) != len(firing) {
			return false, fmt.Sprintf("/api/v1/alerts shows %d alerts, the stream says %d fire", len(live), len(firing))
		}
		for _, a := range live {
			if !firing[a.Fingerprint] {
				return false, fmt.Sprintf("/api/v1/alerts shows %s (%s), which is not firing", a.Rule, a.Fingerprint)
			}
		}
		return true, ""
	})
	if !regexp.MustCompile(`ioc_alerts_firing\{severity="warning"\} \d+`).MatchString(metricsText(t, d.http)) {
		t.Error("/metrics lacks ioc_alerts_firing")
	}
}

// checkAlertInvariants: every alert id in IOC_ALERTS has transitions 1..n
// with no duplicate and no gap, no fingerprint has two episodes at once,
// and the alerts table holds the same transitions once each. It returns
// the last transition of each fingerprint.
//
// The stream and the table are read again until they agree or a deadline
// passes: a transition decided by the idle timeout after the last event was
// acknowledged is published first and written with the next flush.
func checkAlertInvariants(t *testing.T, js jetstream.JetStream, conn driver.Conn, db string) map[string]storedAlert {
	t.Helper()
	var lastOf map[string]storedAlert
	waitFor(t, 60*time.Second, "the alerts table to hold every transition of IOC_ALERTS once", func() (bool, string) {
		var problem string
		lastOf, problem = alertInvariants(t, js, conn, db)
		return problem == "", problem
	})
	return lastOf
}

// alertInvariants checks the invariants once; problem is "" when they hold.
func alertInvariants(t *testing.T, js jetstream.JetStream, conn driver.Conn, db string) (map[string]storedAlert, string) {
	t.Helper()
	all := readAlerts(t, js)
	seqs := map[string]map[int]bool{}
	resolved := map[string]bool{}
	episodes := map[string]map[string]bool{} // fingerprint → ids
	reordered := 0
	for _, a := range all {
		var seq int
		if _, err := fmt.Sscanf(a.msgID[strings.LastIndexByte(a.msgID, ':')+1:], "%d", &seq); err != nil || !strings.HasPrefix(a.msgID, a.ID+":") {
			t.Fatalf("%s: message id %q is not <id>:<seq>", a.Rule, a.msgID)
		}
		if seqs[a.ID] == nil {
			seqs[a.ID] = map[int]bool{}
		}
		if seqs[a.ID][seq] {
			t.Fatalf("%s: transition %s stored twice", a.Rule, a.msgID)
		}
		if seq != len(seqs[a.ID])+1 {
			reordered++ // possible across a NATS leader change: each carries its seq
		}
		seqs[a.ID][seq] = true
		if a.Status == "resolved" {
			resolved[a.ID] = true
		}
		if episodes[a.Fingerprint] == nil {
			episodes[a.Fingerprint] = map[string]bool{}
		}
		episodes[a.Fingerprint][a.ID] = true
	}
	for id, s := range seqs {
		for i := 1; i <= len(s); i++ {
			if !s[i] {
				return nil, fmt.Sprintf("alert %s: transition %d of %d is missing", id, i, len(s))
			}
		}
	}
	for fp, ids := range episodes {
		open := 0
		for id := range ids {
			if !resolved[id] {
				open++
			}
		}
		if open > 1 {
			return nil, fmt.Sprintf("fingerprint %s: %d episodes still firing at once", fp, open)
		}
	}
	var rows, distinct uint64
	if err := conn.QueryRow(context.Background(),
		"SELECT count(), uniqExact(id, seq) FROM "+db+".alerts FINAL").Scan(&rows, &distinct); err != nil {
		return nil, err.Error()
	}
	if rows != uint64(len(all)) || distinct != rows {
		return nil, fmt.Sprintf("alerts table: %d rows (%d distinct), stream: %d transitions", rows, distinct, len(all))
	}
	if reordered > 0 {
		t.Logf("%d transitions stored out of their alert's order (a NATS leader change)", reordered)
	}
	return lastTransitions(all), ""
}

// lastTransitions returns the latest transition of each fingerprint: a
// newer episode, or a higher seq of the same one.
func lastTransitions(all []storedAlert) map[string]storedAlert {
	lastOf := map[string]storedAlert{}
	for _, a := range all {
		if prev, ok := lastOf[a.Fingerprint]; !ok || prev.ID != a.ID || a.Seq > prev.Seq {
			lastOf[a.Fingerprint] = a
		}
	}
	return lastOf
}
