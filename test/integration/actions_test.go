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
	"strings"
	"testing"
	"time"
)

// operatorAlert is what an operator sees of an alert on /api/v1/alerts.
type operatorAlert struct {
	ID             string   `json:"id"`
	Fingerprint    string   `json:"fingerprint"`
	Severity       string   `json:"severity"`
	AcknowledgedBy string   `json:"acknowledgedBy"`
	AckComment     string   `json:"ackComment"`
	Assignee       string   `json:"assignee"`
	AssignedBy     string   `json:"assignedBy"`
	Comments       int      `json:"comments"`
	SilencedBy     []string `json:"silencedBy"`
}

// apiClient calls iocd's API with one token.
type apiClient struct {
	t     *testing.T
	addr  string
	token string
}

func (c apiClient) call(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.addr+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (c apiClient) must(method, path, body string, want int) []byte {
	c.t.Helper()
	code, out := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return out
}

// firing returns the firing alert of a fingerprint, if any.
func (c apiClient) firing(fp string) (operatorAlert, bool) {
	code, out := c.call("GET", "/api/v1/alerts", "")
	var all []operatorAlert
	if code != http.StatusOK || json.Unmarshal(out, &all) != nil {
		return operatorAlert{}, false
	}
	for _, a := range all {
		if a.Fingerprint == fp {
			return a, true
		}
	}
	return operatorAlert{}, false
}

// waitAlert polls the board until the alert satisfies ok.
func (c apiClient) waitAlert(fp, what string, ok func(a operatorAlert) bool) operatorAlert {
	c.t.Helper()
	var got operatorAlert
	waitFor(c.t, 20*time.Second, what, func() (bool, string) {
		a, found := c.firing(fp)
		got = a
		return found && ok(a), fmt.Sprintf("board shows %+v (found %v)", a, found)
	})
	return got
}

// TestOperatorActions: ack, assign, comment and unack through the API,
// with identities from tokens. Each is a transition on IOC_ALERTS that
// every reader sees, one alert_actions row with the token's name (also
// for actions taken while ClickHouse is down), kept across a SIGKILL; an
// escalation clears the acknowledgement and keeps the rest; the history
// tells it all in order.
func TestOperatorActions(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: ops_high_water
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 1m
    agg: max
    op: ">="
    levels:
      - {threshold: 1.0, severity: info, name: "báo động 1"}
      - {threshold: 2.0, severity: warning, name: "báo động 2"}
    group_by: [source]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ch := startPrivateClickHouse(t)
	db, conn := testDBAt(t, ch.addr())
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_CLICKHOUSE_ADDR="+ch.addr(), "IOC_RULES="+rules,
		"IOC_HTTP_TOKENS=lan:operator=tok-lan-0123456789,minh:viewer=tok-minh-0123456789")
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	lan := apiClient{t, d.http, "tok-lan-0123456789"}
	minh := apiClient{t, d.http, "tok-minh-0123456789"}
	nobody := apiClient{t, d.http, ""}

	var lastReading time.Time
	readings := func(prefix string, v float64) {
		// Each batch in a minute of its own: the first one's pane is final
		// (by the idle timeout), and a correction of a decided pane is not
		// decided again.
		for !lastReading.IsZero() && !time.Now().Add(-3*time.Second).Truncate(time.Minute).After(lastReading.Truncate(time.Minute)) {
			time.Sleep(200 * time.Millisecond)
		}
		now := time.Now()
		lastReading = now.Add(-time.Second)
		var msgs []message
		for i := range 3 {
			s := sample{id: fmt.Sprintf("%s-%d", prefix, i), kind: "environment", typ: "water_level", source: "wl-ops",
				area: "kim-long", timeMs: now.Add(-time.Duration(3-i) * time.Second).UnixMilli(),
				metrics: map[string]float64{"height": v}}
			msgs = append(msgs, message{subject: subjectOf(s), data: encode(s), msgID: s.id})
		}
		publish(t, js, msgs)
	}
	readings("first", 1.5)
	var fired storedAlert
	waitFor(t, 30*time.Second, "the alert to fire", func() (bool, string) {
		got := ofRule(readAlerts(t, js), "ops_high_water")
		if len(got) > 0 {
			fired = got[0]
		}
		return len(got) == 1, fmt.Sprintf("%d transitions", len(got))
	})
	fp := fired.Fingerprint
	path := "/api/v1/alerts/" + fp
	minh.waitAlert(fp, "the alert on the board", func(operatorAlert) bool { return true })

	// Who may act.
	minh.must("POST", path+"/ack", `{}`, http.StatusForbidden)
	nobody.must("POST", path+"/ack", `{}`, http.StatusUnauthorized)
	lan.must("POST", "/api/v1/alerts/0000/ack", `{}`, http.StatusNotFound)
	lan.must("POST", path+"/comments", `{"text": ""}`, http.StatusBadRequest)

	lan.must("POST", path+"/ack", `{"by": "kẻ mạo danh", "comment": "đã thấy"}`, http.StatusAccepted)
	lan.must("POST", path+"/assign", `{"to": "pccc-hue"}`, http.StatusAccepted)
	lan.must("POST", path+"/comments", `{"text": "<script>alert(1)</script>"}`, http.StatusAccepted)
	minh.waitAlert(fp, "ack, assign and comment on the board", func(a operatorAlert) bool {
		return a.AcknowledgedBy == "lan" && a.AckComment == "đã thấy" && a.Assignee == "pccc-hue" && a.AssignedBy == "lan" && a.Comments == 1
	})

	// ClickHouse goes away; actions and silences keep working. iocd is
	// SIGKILLed before ClickHouse returns: the restarted one writes the
	// rows from IOC_ALERTS and the silence bucket.
	ch.run("stop")
	lan.must("POST", path+"/unack", `{}`, http.StatusAccepted)
	lan.must("POST", path+"/comments", `{"text": "ClickHouse tắt, vẫn ghi nhận"}`, http.StatusAccepted)
	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var created struct{ SilenceID string }
	if err := json.Unmarshal(lan.must("POST", "/api/v1/silences", `{"matchers": [{"name": "source", "value": "wl-other", `+
		`"isRegex": false, "isEqual": true}], "endsAt": "`+ends+`", "comment": "trạm khác bảo trì"}`, http.StatusCreated), &created); err != nil {
		t.Fatal(err)
	}
	minh.waitAlert(fp, "the actions taken while ClickHouse is down", func(a operatorAlert) bool {
		return a.AcknowledgedBy == "" && a.Comments == 2 && a.Assignee == "pccc-hue"
	})
	d.kill()
	ch.run("start")
	d.start()
	type row struct{ action, actor, role, comment string }
	want := []row{{"ack", "lan", "operator", "đã thấy"}, {"assign", "lan", "operator", ""},
		{"comment", "lan", "operator", "<script>alert(1)</script>"}, {"unack", "lan", "operator", ""},
		{"comment", "lan", "operator", "ClickHouse tắt, vẫn ghi nhận"}}
	waitActions := func(want []row) {
		t.Helper()
		waitFor(t, 60*time.Second, "the alert_actions rows", func() (bool, string) {
			rows, err := conn.Query(context.Background(), "SELECT action, actor, role, comment FROM "+db+
				".alert_actions FINAL WHERE fingerprint = ? ORDER BY seq", fp)
			if err != nil {
				return false, err.Error()
			}
			defer rows.Close()
			var got []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.action, &r.actor, &r.role, &r.comment); err != nil {
					return false, err.Error()
				}
				got = append(got, r)
			}
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("rows %v, want %v", got, want)
		})
	}
	waitActions(want)
	waitFor(t, 30*time.Second, "the silence's row", func() (bool, string) {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".alert_actions FINAL WHERE fingerprint = '' "+
			"AND alert_id = ? AND action = 'silence' AND actor = 'lan' AND comment = 'trạm khác bảo trì'", created.SilenceID).Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("%d rows, %v", n, err)
	})

	// The restarted iocd rebuilt the alert from IOC_ALERTS.
	minh.waitAlert(fp, "the alert after a restart", func(a operatorAlert) bool {
		return a.Assignee == "pccc-hue" && a.Comments == 2 && a.AcknowledgedBy == ""
	})
	lan.must("POST", path+"/ack", `{"comment": "sau khởi động lại"}`, http.StatusAccepted)
	lan.waitAlert(fp, "the acknowledgement after the restart", func(a operatorAlert) bool {
		return a.AcknowledgedBy == "lan" && a.Comments == 2
	})
	want = append(want, row{"ack", "lan", "operator", "sau khởi động lại"})

	// An escalation asks for a new look; the assignee and the comments stay.
	readings("second", 2.5)
	up := minh.waitAlert(fp, "the escalation", func(a operatorAlert) bool { return a.Severity == "warning" })
	if up.AcknowledgedBy != "" || up.Assignee != "pccc-hue" || up.Comments != 2 || up.ID != fired.ID {
		t.Fatalf("after the escalation: %+v", up)
	}
	waitActions(want)

	// The history, oldest first: the firing, the actions with their actor,
	// the escalation.
	var h []struct {
		Type, Action, Actor, Role, Comment, To, Status, Severity string
		Seq                                                      int
	}
	waitFor(t, 20*time.Second, "the whole history", func() (bool, string) {
		code, out := minh.call("GET", path+"/history", "")
		h = nil
		if code != http.StatusOK || json.Unmarshal(out, &h) != nil {
			return false, fmt.Sprintf("%d %s", code, out)
		}
		return len(h) == 8, fmt.Sprintf("%d entries: %s", len(h), out)
	})
	var b strings.Builder
	for i, e := range h {
		if e.Seq != i+1 {
			t.Errorf("history entry %d has seq %d", i+1, e.Seq)
		}
		fmt.Fprintf(&b, "%s:%s%s%s/%s ", e.Type, e.Action, e.Status, e.To, e.Actor)
	}
	if got, want := b.String(), "transition:firing/ action:ack/lan action:assignpccc-hue/lan action:comment/lan "+
		"action:unack/lan action:comment/lan action:ack/lan transition:firing/ "; got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
	if h[3].Comment != "<script>alert(1)</script>" || h[3].Role != "operator" || h[7].Severity != "warning" {
		t.Fatalf("history details: %+v", h)
	}
	minh.must("GET", "/api/v1/alerts/nope/history", "", http.StatusNotFound)

	// The actions travel in IOC_ALERTS too, for downstream services.
	var withAction int
	s := mustStream(t, js, "IOC_ALERTS")
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if a := m.Header.Get("Ioc-Action"); a != "" {
			withAction++
			if !strings.Contains(a, `"actor":"lan"`) {
				t.Errorf("Ioc-Action %s", a)
			}
		}
	}
	if withAction != 6 {
		t.Fatalf("%d transitions carry an Ioc-Action header, want 6", withAction)
	}
	checkAlertInvariants(t, js, conn, db)
}
