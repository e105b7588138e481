//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/sim"
	"github.com/iocstream/iocstream/test/testenv"
)

// TestAlertmanagerBridge runs the flood scenario through iocd with a real
// Alertmanager (Debian's) routing to a webhook the test serves. The Kim
// Long alarm must reach the webhook as one group that climbs info →
// warning → critical and resolves; Alertmanager is restarted in the middle
// (it keeps alerts in memory only: the alarm is firing in it again after a
// resend interval) and later kept down for a minute while the alarm
// escalates (iocd stays ready, reports the outage, and catches up once it
// is back). The rain alarms are under an iocd silence: they fire in iocd
// and never reach Alertmanager.
func TestAlertmanagerBridge(t *testing.T) {
	hook := newWebhook(t)
	am := startAlertmanager(t, hook.url)
	db, _ := testDB(t)
	ns := startNATS(t)
	const resend = 2 * time.Second
	d := newIOCD(t, ns.url(), db, "IOC_ALERTMANAGER_URL="+am.url(), "IOC_ALERTMANAGER_RESEND="+resend.String(),
		"IOC_CONSOLE_URL=http://ioc.hue.test/")
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	api := apiClient{t, d.http, ""}
	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	api.must("POST", "/api/v1/silences", `{"matchers": [{"name": "rule", "value": "rain_.*", "isRegex": true, "isEqual": true}], `+
		`"endsAt": "`+ends+`", "comment": "mưa: đã biết"}`, http.StatusCreated)

	start := time.Now().Add(-9 * time.Hour).Truncate(time.Minute)
	gen, err := sim.New(sim.Config{Seed: 7, Start: start, Scenario: sim.ScenarioFlood})
	if err != nil {
		t.Fatal(err)
	}
	end := start.Add(8 * time.Hour)
	// kimLong is iocd's latest decision on the Kim Long alarm ("" before
	// the first), as "<severity> <status>".
	kimLong := func() string {
		seen := ofRule(readAlerts(t, js), "river_level_kim_long")
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1].Severity + " " + seen[len(seen)-1].Status
	}
	// shown waits until the webhook shows state as the alarm's latest.
	shown := func(state string, within time.Duration) {
		t.Helper()
		if strings.HasSuffix(state, " resolved") {
			state = "resolved" // every severity it had
		}
		waitFor(t, within, "the webhook to show Kim Long "+state, func() (bool, string) {
			got := hook.kimLong()
			return got == state, "webhook shows " + got
		})
	}

	restarted, downSince := false, time.Time{}
	var caughtUp time.Duration
	var chunk []message
	step := func() {
		publish(t, js, chunk)
		chunk = chunk[:0]
		waitDrained(t, js)
		state := kimLong()
		if state == "" {
			return
		}
		switch {
		case downSince.IsZero():
			shown(state, 20*time.Second)
		case strings.HasPrefix(state, "critical"):
			// iocd keeps going and says what is wrong without being unready.
			if code, body := api.call("GET", "/readyz", ""); code != http.StatusOK {
				t.Errorf("/readyz with Alertmanager down: %d %s", code, body)
			}
			var st struct {
				Alertmanager []struct {
					URL       string `json:"url"`
					Up        bool   `json:"up"`
					Queued    int    `json:"queued"`
					LastError string `json:"lastError"`
				} `json:"alertmanager"`
			}
			waitFor(t, 20*time.Second, "/api/v1/status to report Alertmanager down", func() (bool, string) {
				_ = json.Unmarshal(api.must("GET", "/api/v1/status", "", http.StatusOK), &st)
				return len(st.Alertmanager) == 1 && !st.Alertmanager[0].Up && st.Alertmanager[0].LastError != "",
					fmt.Sprintf("%+v", st)
			})
			time.Sleep(time.Until(downSince.Add(time.Minute)))
			am.start()
			back := time.Now()
			shown(state, 30*time.Second)
			caughtUp = time.Since(back)
			t.Logf("Alertmanager back after %s down (%d alerts queued, %q): the webhook shows %s %s later",
				back.Sub(downSince).Round(time.Second), st.Alertmanager[0].Queued, st.Alertmanager[0].LastError, state,
				caughtUp.Round(10*time.Millisecond))
			downSince = time.Time{}
		}
		if !restarted && state == "warning firing" {
			restarted = true
			// Restarted, Alertmanager has no alerts until iocd re-sends them.
			am.stop()
			am.start()
			back := time.Now()
			waitFor(t, 5*resend+10*time.Second, "the Kim Long warning active in Alertmanager again", func() (bool, string) {
				got := am.active("river_level_kim_long")
				return len(got) == 1 && got[0] == "warning", fmt.Sprint(got)
			})
			t.Logf("Alertmanager restarted: the warning is active in it again %s later (resend %s)",
				time.Since(back).Round(10*time.Millisecond), resend)
			// Then down for a minute while the alarm climbs.
			am.stop()
			downSince = time.Now()
		}
	}
	for gen.NextTime().Before(end) {
		m := gen.Next()
		chunk = append(chunk, message{subject: m.Subject, data: m.Data, msgID: m.MsgID})
		if len(chunk) == 10_000 {
			step()
		}
	}
	step()
	if !restarted || caughtUp == 0 {
		t.Fatalf("the scenario never reached the warning (%v) or the critical alarm while Alertmanager was down", restarted)
	}
	final := kimLong()
	if !strings.HasSuffix(final, " resolved") {
		t.Fatalf("iocd ends the scenario with Kim Long %q", final)
	}
	shown(final, 20*time.Second)

	// One group, all the way: info, warning and critical fired in order.
	notes := hook.of("river_level_kim_long")
	keys := map[string]bool{}
	var climbed []string
	for _, n := range notes {
		keys[n.GroupKey] = true
		if n.GroupLabels["alertname"] != "river_level_kim_long" || n.GroupLabels["area"] != "kim-long" {
			t.Errorf("group labels %v", n.GroupLabels)
		}
		for _, a := range n.Alerts {
			if a.Status != "firing" {
				continue
			}
			if len(climbed) == 0 || climbed[len(climbed)-1] != a.Labels["severity"] {
				climbed = append(climbed, a.Labels["severity"])
			}
			if !strings.HasPrefix(a.GeneratorURL, "http://ioc.hue.test/#/alert/") || a.Labels["fingerprint"] == "" ||
				a.Labels["station"] != "kim-long" || a.Annotations["area_name"] != "Kim Long" || a.Annotations["summary"] == "" {
				t.Errorf("alert as Alertmanager sent it: %+v", a)
			}
		}
	}
	if len(keys) != 1 {
		t.Errorf("the Kim Long alarm arrived in %d groups: %v", len(keys), keys)
	}
	// iocd's own ladder, of which the webhook may miss a step only where
	// two came within one group interval.
	var ladder []string
	for _, a := range ofRule(readAlerts(t, js), "river_level_kim_long") {
		if a.Status == "firing" && (len(ladder) == 0 || ladder[len(ladder)-1] != a.Severity) {
			ladder = append(ladder, a.Severity)
		}
	}
	if !strings.HasPrefix(strings.Join(climbed, " "), "info warning critical") || !subsequence(climbed, ladder) {
		t.Errorf("the webhook saw the alarm fire as %v; iocd decided %v", climbed, ladder)
	}
	t.Logf("Kim Long: %d notifications in one group, fired %v (iocd: %v), then %s", len(notes), climbed, ladder, final)

	// The silenced rain alarms fired in iocd, and none reached Alertmanager.
	var rain int
	for _, a := range readAlerts(t, js) {
		if strings.HasPrefix(a.Rule, "rain_") && a.Status == "firing" {
			rain++
			if a.silenced != "true" {
				t.Errorf("rain alarm %s published without Ioc-Silenced", a.msgID)
			}
		}
	}
	if rain == 0 {
		t.Fatal("no rain alarm fired: the silence test proves nothing")
	}
	if got := hook.matching("rain_"); got != 0 {
		t.Errorf("%d notifications of silenced rain alarms", got)
	}
	if got := am.activeMatching("rain_"); got != 0 {
		t.Errorf("%d silenced rain alarms in Alertmanager", got)
	}
	m := metricsText(t, d.http)
	for _, name := range []string{"ioc_alertmanager_alerts_sent_total", "ioc_alertmanager_alerts_failed_total"} {
		if v := seriesValue(m, name); v <= 0 {
			t.Errorf("%s = %g after the scenario and the outage", name, v)
		}
	}
	t.Logf("%d rain alarms silenced; iocd sent %g alerts to Alertmanager, %g failed while it was down", rain,
		seriesValue(m, "ioc_alertmanager_alerts_sent_total"), seriesValue(m, "ioc_alertmanager_alerts_failed_total"))
}

// subsequence tells whether every element of sub is in seq, in order.
func subsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// seriesValue sums a metric's series in an exposition.
func seriesValue(exposition, name string) float64 {
	var sum float64
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(exposition, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
}

// webhook is an Alertmanager webhook receiver.
type webhook struct {
	url   string
	mu    sync.Mutex
	notes []notification
}

type notification struct {
	Status      string            `json:"status"`
	GroupKey    string            `json:"groupKey"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		GeneratorURL string            `json:"generatorURL"`
	} `json:"alerts"`
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notification
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
			return
		}
		h.mu.Lock()
		h.notes = append(h.notes, n)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// of returns the notifications with alerts of rule.
func (h *webhook) of(rule string) []notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notification
	for _, n := range h.notes {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] == rule {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

func (h *webhook) matching(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, note := range h.notes {
		for _, a := range note.Alerts {
			if strings.HasPrefix(a.Labels["alertname"], prefix) {
				n++
			}
		}
	}
	return n
}

// kimLong is what the last notification of the Kim Long alarm shows:
// the firing severity, or "resolved" when none fires.
func (h *webhook) kimLong() string {
	notes := h.of("river_level_kim_long")
	if len(notes) == 0 {
		return ""
	}
	for _, a := range notes[len(notes)-1].Alerts {
		if a.Status == "firing" {
			return a.Labels["severity"] + " firing"
		}
	}
	return "resolved"
}

// alertmanager is a real Alertmanager process on a fixed port and
// storage, so it can be stopped and started again.
type alertmanager struct {
	t    *testing.T
	bin  string
	args []string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startAlertmanager(t *testing.T, webhookURL string) *alertmanager {
	bin := testenv.Alertmanager(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, area]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhookURL)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	am := &alertmanager{t: t, bin: bin, port: testenv.FreePort(t), dir: dir}
	am.args = []string{"--config.file=" + filepath.Join(dir, "alertmanager.yml"), "--storage.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", am.port), "--cluster.listen-address="}
	am.start()
	t.Cleanup(func() {
		am.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "alertmanager.log"))
			lines := strings.Split(string(b), "\n")
			t.Logf("alertmanager log tail:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	return am
}

func (am *alertmanager) url() string { return fmt.Sprintf("http://127.0.0.1:%d", am.port) }

func (am *alertmanager) start() {
	am.t.Helper()
	logf, err := os.OpenFile(filepath.Join(am.dir, "alertmanager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		am.t.Fatal(err)
	}
	defer logf.Close()
	am.cmd = exec.Command(am.bin, am.args...)
	am.cmd.Stdout, am.cmd.Stderr = logf, logf
	if err := am.cmd.Start(); err != nil {
		am.t.Fatal(err)
	}
	waitFor(am.t, 20*time.Second, "Alertmanager ready", func() (bool, string) {
		resp, err := http.Get(am.url() + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

func (am *alertmanager) stop() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGTERM)
	_ = am.cmd.Wait()
	am.cmd = nil
}

// active returns the severities of the rule's active alerts in
// Alertmanager.
func (am *alertmanager) active(rule string) []string {
	var out []string
	for _, a := range am.alerts(`alertname="` + rule + `"`) {
		out = append(out, a["severity"])
	}
	return out
}

func (am *alertmanager) activeMatching(prefix string) int {
	return len(am.alerts(`alertname=~"` + prefix + `.*"`))
}

// alerts returns the labels of the active alerts matching filter.
func (am *alertmanager) alerts(filter string) []map[string]string {
	resp, err := http.Get(am.url() + "/api/v2/alerts?active=true&silenced=true&inhibited=true&filter=" + url.QueryEscape(filter))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var got []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	var out []map[string]string
	for _, a := range got {
		if a.Status.State == "active" {
			out = append(out, a.Labels)
		}
	}
	return out
}
