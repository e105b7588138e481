//go:build integration && browser

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Debian chromium driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts chromium; make test-browser installs it first
// (deployments/scripts/chromium.sh). Each tab has its own sessionStorage,
// so two tabs are two operators.
func newBrowser(t *testing.T) func() *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run deployments/scripts/chromium.sh (make test does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1600, 1000),
		chromedp.Flag("lang", "vi-VN"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // reaps the browser process
	var first context.Context
	return func() *browser {
		var ctx context.Context
		var cancel context.CancelFunc
		if first == nil {
			ctx, cancel = chromedp.NewContext(alloc)
			first = ctx
		} else {
			ctx, cancel = chromedp.NewContext(first) // a new tab of the same browser
		}
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil { // the first run starts the browser: no timeout on it
			t.Fatalf("start chromium: %v", err)
		}
		return &browser{t, ctx}
	}
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval runs a JavaScript expression in the page and decodes its value
// into out (a *bool, *string, *int).
func (b *browser) eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		return err
	}
	return json.Unmarshal(v, out)
}

// until polls a JavaScript condition until it is true.
func (b *browser) until(timeout time.Duration, what, js string) {
	b.t.Helper()
	waitFor(b.t, timeout, what, func() (bool, string) {
		var ok bool
		if err := b.eval("Boolean("+js+")", &ok); err != nil {
			return false, err.Error()
		}
		var state string
		_ = b.eval("JSON.stringify(window.iocConsole && window.iocConsole.state)", &state)
		return ok, "page state " + state
	})
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	if err := b.eval(fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel), &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *browser) login(addr, token string) {
	b.t.Helper()
	b.run("open the console", chromedp.Navigate("http://"+addr+"/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="token-input"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), token),
		chromedp.Click(chromedp.CSS(`[data-testid="token-submit"]`)))
	b.until(15*time.Second, "the console to go live", `window.iocConsole.state.conn === "live"`)
}

// screenshot saves the page as PNG under IOC_CONSOLE_SCREENSHOTS (the
// README's pictures come from there) or the test's directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("IOC_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	b.run("settle before "+name, chromedp.Sleep(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

const consoleRules = `rules:
  - name: camera_fire
    kind: event
    category: security
    subCategory: buildingFire
    summary: "Camera {{source}} tại {{area_name}} phát hiện cháy/khói (độ tin cậy {{value}})"
    match: {kind: camera, type: [fire, smoke]}
    when: ["confidence >= 0.8"]
    severity: critical
    resolve_after: 1h
    group_by: [source, type]
  - name: camera_accident
    kind: event
    category: traffic
    subCategory: carAccident
    summary: "Camera {{source}} tại {{area_name}} phát hiện tai nạn (độ tin cậy {{value}})"
    match: {kind: camera, type: accident}
    when: ["confidence >= 0.7"]
    severity: warning
    resolve_after: 1h
  - name: camera_crowd
    kind: event
    category: security
    summary: "Camera {{source}} tại {{area_name}}: đám đông (độ tin cậy {{value}})"
    match: {kind: camera, type: crowd_gathering}
    when: ["confidence >= 0.5"]
    severity: info
    resolve_after: 1h
`

// TestConsoleInBrowser drives the console in chromium against a real iocd:
// an alert shows within 2 s of its event, a new critical one raises the
// banner; acknowledge, assign, comment and silence from the page change
// what every API reader sees and write alert_actions rows of the token's
// name; a comment with markup stays text; a viewer sees no buttons; the
// page recovers by itself from a SIGKILL of iocd; Vietnamese renders.
func TestConsoleInBrowser(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(consoleRules), 0o644); err != nil {
		t.Fatal(err)
	}
	db, conn := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_RULES="+rules,
		"IOC_HTTP_TOKENS=lan:operator=tok-lan-0123456789,minh:viewer=tok-minh-0123456789")
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	api := apiClient{t, d.http, "tok-lan-0123456789"}
	tab := newBrowser(t)

	var n int
	detect := func(typ, source, area string, confidence float64) {
		n++
		s := sample{id: fmt.Sprintf("cam-%d", n), kind: "camera", typ: typ, source: source, area: area,
			timeMs: time.Now().UnixMilli(), metrics: map[string]float64{"confidence": confidence}}
		publish(t, js, []message{{subject: subjectOf(s), data: encode(s), msgID: s.id}})
	}
	// Something on the board and the map before the operator logs in.
	detect("accident", "cam-an-cuu-2", "an-cuu", 0.9)
	detect("crowd_gathering", "cam-phu-hoi-1", "phu-xuan", 0.7)
	detect("crowd_gathering", "cam-vy-da-3", "vy-da", 0.6)

	op := tab()
	op.login(d.http, "tok-lan-0123456789")
	op.until(20*time.Second, "three alerts on the board", `document.querySelectorAll('[data-testid="alert-row"]').length === 3`)
	op.until(5*time.Second, "the sign-out button", `document.querySelector('[data-testid="signout"]').offsetParent !== null`)
	op.run("the sources page", chromedp.Navigate("http://"+d.http+"/#/sources"))
	op.until(20*time.Second, "the cameras on the sources page", `document.querySelectorAll('[data-testid="source-row"]').length === 3`)
	op.run("a route that is no view", chromedp.Navigate("http://"+d.http+"/#/constructor"))
	op.until(5*time.Second, "the board instead", `window.iocConsole.state.route === "board"`)
	if got := op.text(`[data-testid="nav-board"]`); got != "Bảng cảnh báo" {
		t.Fatalf("the board's tab reads %q, want Bảng cảnh báo (Vietnamese by default, no mojibake)", got)
	}
	if row := op.text(`[data-testid="alert-row"][data-severity="warning"]`); !strings.Contains(row, "An Cựu") ||
		!strings.Contains(row, "phát hiện tai nạn") {
		t.Fatalf("the warning's row reads %q: want the area's Vietnamese name and the summary", row)
	}

	// A fire: on the board within 2 s of the event, impossible to miss.
	published := time.Now()
	detect("fire", "cam-dong-ba-1", "phu-xuan", 0.95)
	waitFor(t, 2*time.Second, "the fire alert on the board within 2 s", func() (bool, string) {
		var ok bool
		_ = op.eval(`document.querySelector('[data-testid="alert-row"][data-severity="critical"]') !== null`, &ok)
		return ok, "not shown"
	})
	t.Logf("the fire alert was on the board %s after its event was published", time.Since(published).Round(time.Millisecond))
	op.until(5*time.Second, "the critical banner", `(() => { const b = document.querySelector('[data-testid="critical-banner"]'); return b && !b.hidden && b.offsetParent !== null })()`)
	var firstRow string
	_ = op.eval(`document.querySelector('[data-testid="alert-row"]').dataset.severity`, &firstRow)
	if firstRow != "critical" {
		t.Fatalf("the board's first row is %q: most severe first", firstRow)
	}
	var fp string
	if err := op.eval(`document.querySelector('[data-testid="alert-row"][data-severity="critical"]').dataset.fingerprint`, &fp); err != nil {
		t.Fatal(err)
	}
	op.screenshot("board")

	op.run("open the map", chromedp.Click(chromedp.CSS(`[data-testid="nav-map"]`)))
	op.until(10*time.Second, "40 units on the map", `document.querySelectorAll('[data-testid="map-unit"]').length === 40`)
	op.until(5*time.Second, "Phú Xuân red", `document.querySelector('[data-testid="map-unit"][data-area="phu-xuan"]').dataset.worst === "critical"`)
	op.until(5*time.Second, "An Cựu amber", `document.querySelector('[data-testid="map-unit"][data-area="an-cuu"]').dataset.worst === "warning"`)
	op.screenshot("map")
	op.run("click Phú Xuân", chromedp.Click(chromedp.CSS(`[data-testid="map-unit"][data-area="phu-xuan"]`)))
	op.until(10*time.Second, "the board filtered by Phú Xuân",
		`location.hash.startsWith("#/board") && [...document.querySelectorAll('[data-testid="alert-row"]')].length === 2`)

	// The alert's detail, and every action from its buttons.
	op.run("open the detail", chromedp.Navigate("http://"+d.http+"/#/alert/"+fp))
	op.until(10*time.Second, "the detail", `document.querySelector('[data-testid="alert-detail"]') && document.querySelector('[data-testid="btn-ack"]')`)
	op.run("acknowledge", chromedp.Click(chromedp.CSS(`[data-testid="btn-ack"]`)))
	api.waitAlert(fp, "the acknowledgement from the page", func(a operatorAlert) bool { return a.AcknowledgedBy == "lan" })
	op.run("assign", chromedp.SendKeys(chromedp.CSS(`[data-testid="assign-to"]`), "pccc-hue"),
		chromedp.Click(chromedp.CSS(`[data-testid="btn-assign"]`)))
	api.waitAlert(fp, "the assignment from the page", func(a operatorAlert) bool { return a.Assignee == "pccc-hue" })
	const markup = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">Đã cử xe`
	op.run("comment", chromedp.SendKeys(chromedp.CSS(`[data-testid="comment-text"]`), markup),
		chromedp.Click(chromedp.CSS(`[data-testid="btn-comment"]`)))
	api.waitAlert(fp, "the comment from the page", func(a operatorAlert) bool { return a.Comments == 1 })
	op.until(20*time.Second, "the comment in the history, as text",
		`[...document.querySelectorAll('[data-testid="history-entry"]')].some(e => e.innerText.includes('<script>window.__pwned=1</script>'))`)
	var pwned bool
	if err := op.eval(`window.__pwned !== undefined || document.querySelector('[data-testid="history"] script, [data-testid="history"] img') !== null`, &pwned); err != nil || pwned {
		t.Fatalf("the comment's markup ran or became elements (%v)", err)
	}
	op.until(20*time.Second, "the chart", `document.querySelector('[data-testid="series-chart"]')`)
	op.screenshot("detail")

	op.run("silence from the alert", chromedp.Click(chromedp.CSS(`[data-testid="btn-silence"]`)))
	op.until(10*time.Second, "the silence form, pre-filled", `document.querySelector('[data-testid="silence-submit"]') && document.querySelector('[data-testid="sil-value-0"]').value === "camera_fire"`)
	op.run("submit the silence", chromedp.SendKeys(chromedp.CSS(`[data-testid="sil-comment"]`), "đội PCCC đã tới hiện trường"),
		chromedp.Click(chromedp.CSS(`[data-testid="silence-submit"]`)))
	api.waitAlert(fp, "the silence from the page on the alert", func(a operatorAlert) bool { return len(a.SilencedBy) == 1 })
	op.run("back to the board", chromedp.Navigate("http://"+d.http+"/#/board"))
	op.until(10*time.Second, "the silenced badge", `document.querySelector('[data-testid="alert-row"][data-fingerprint="`+fp+`"] [data-testid="silenced-badge"]')`)

	waitFor(t, 30*time.Second, "the page's actions in alert_actions, by lan", func() (bool, string) {
		rows, err := conn.Query(context.Background(), "SELECT action, actor FROM "+db+".alert_actions FINAL ORDER BY at")
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var action, actor string
			_ = rows.Scan(&action, &actor)
			got = append(got, action+"/"+actor)
		}
		return fmt.Sprint(got) == "[ack/lan assign/lan comment/lan silence/lan]", fmt.Sprint(got)
	})

	// A viewer sees everything and no buttons; the API refuses it too.
	viewer := tab()
	viewer.login(d.http, "tok-minh-0123456789")
	viewer.run("the viewer opens the detail", chromedp.Navigate("http://"+d.http+"/#/alert/"+fp))
	viewer.until(10*time.Second, "the viewer's detail", `document.querySelector('[data-testid="alert-detail"]') && `+
		`window.iocConsole.state.role === "viewer"`)
	var buttons int
	visible := func(sel string) string {
		return `[...document.querySelectorAll('` + sel + `')].filter(e => e.offsetParent !== null).length`
	}
	if err := viewer.eval(visible(`[data-testid="btn-ack"], [data-testid="btn-unack"], [data-testid="btn-assign"], `+
		`[data-testid="btn-comment"], [data-testid="btn-silence"]`), &buttons); err != nil || buttons != 0 {
		t.Fatalf("a viewer sees %d action buttons (%v)", buttons, err)
	}
	viewer.run("the viewer opens the silences", chromedp.Navigate("http://"+d.http+"/#/silences"))
	viewer.until(10*time.Second, "the silence listed", `document.querySelectorAll('[data-testid="silence-row"]').length === 1`)
	if err := viewer.eval(visible(`[data-testid="btn-expire"], [data-testid="silence-submit"]`), &buttons); err != nil || buttons != 0 {
		t.Fatalf("a viewer sees %d silence buttons (%v)", buttons, err)
	}
	apiClient{t, d.http, "tok-minh-0123456789"}.must("POST", "/api/v1/alerts/"+fp+"/ack", `{}`, http.StatusForbidden)

	// iocd is SIGKILLed and restarted: the page comes back by itself.
	op.run("back to the whole board", chromedp.Navigate("http://"+d.http+"/#/board"),
		chromedp.Click(chromedp.CSS(`[data-testid="filter-clear"]`)))
	op.until(10*time.Second, "the board", `document.querySelectorAll('[data-testid="alert-row"]').length === 4`)
	d.kill()
	op.until(30*time.Second, "the page to notice", `window.iocConsole.state.conn !== "live"`)
	d.start()
	op.until(60*time.Second, "the page live again", `window.iocConsole.state.conn === "live"`)
	op.until(10*time.Second, "the board back, silence and all",
		`document.querySelectorAll('[data-testid="alert-row"]').length === 4 && document.querySelector('[data-testid="alert-row"][data-fingerprint="`+fp+`"] [data-testid="silenced-badge"]')`)
	detect("smoke", "cam-kim-long-2", "kim-long", 0.9)
	op.until(10*time.Second, "a new alert after the restart", `document.querySelectorAll('[data-testid="alert-row"]').length === 5`)

	// English on request.
	op.run("switch to English", chromedp.Click(chromedp.CSS(`[data-testid="lang"]`)))
	op.until(5*time.Second, "English", `document.documentElement.lang === "en"`)
	var live []operatorAlert
	_ = json.Unmarshal(api.must("GET", "/api/v1/alerts", "", http.StatusOK), &live)
	if len(live) != 5 {
		t.Fatalf("the API shows %d alerts, want 5", len(live))
	}
}

// TestConsoleManyAlerts: 500 firing alerts reach the board, which renders
// each burst of stream events in one go and filters them at once. The
// figures are logged (speed is a benchmark's business, not an assertion's).
func TestConsoleManyAlerts(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(consoleRules), 0o644); err != nil {
		t.Fatal(err)
	}
	db, _ := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_RULES="+rules)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	op := newBrowser(t)()
	op.run("open the console", chromedp.Navigate("http://"+d.http+"/"))
	op.until(15*time.Second, "the console to go live", `window.iocConsole.state.conn === "live"`)

	const n = 500
	areas := []string{"phu-xuan", "kim-long", "vy-da", "thuan-hoa", "an-cuu", "huong-thuy", "phu-bai", "thuan-an"}
	types := []string{"fire", "accident", "crowd_gathering"}
	var msgs []message
	now := time.Now()
	for i := range n {
		s := sample{id: fmt.Sprintf("many-%d", i), kind: "camera", typ: types[i%3], source: fmt.Sprintf("cam-many-%03d", i),
			area: areas[i%len(areas)], timeMs: now.UnixMilli(), metrics: map[string]float64{"confidence": 0.95}}
		msgs = append(msgs, message{subject: subjectOf(s), data: encode(s), msgID: s.id})
	}
	start := time.Now()
	publish(t, js, msgs)
	op.until(60*time.Second, "500 rows on the board", fmt.Sprintf(`document.querySelectorAll('[data-testid="alert-row"]').length === %d`, n))
	var renders int
	_ = op.eval(`window.iocConsole.state.renders`, &renders)
	t.Logf("%d alerts on the board %s after publishing, in %d renders", n, time.Since(start).Round(time.Millisecond), renders)
	if renders > n/5 {
		t.Errorf("%d renders for %d stream events: bursts are not coalesced", renders, n)
	}
	// A filter over 500 rows, timed in the page.
	var ms float64
	if err := op.eval(`(() => {
		const sel = document.querySelector('[data-testid="filter-severity"]');
		const t0 = performance.now();
		sel.value = 'critical';
		sel.dispatchEvent(new Event('change', {bubbles: true}));
		return performance.now() - t0;
	})()`, &ms); err != nil {
		t.Fatal(err)
	}
	op.until(10*time.Second, "the critical ones only", fmt.Sprintf(`document.querySelectorAll('[data-testid="alert-row"]').length === %d`, (n+2)/3))
	t.Logf("filtering 500 alerts to %d: %.1f ms of script in the change handler", (n+2)/3, ms)
}
