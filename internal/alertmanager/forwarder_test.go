package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
)

// fakeAM records what is posted to /api/v2/alerts; it answers 503 while
// down.
type fakeAM struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	down bool
	got  []postable
	auth []string
}

func newFakeAM(t *testing.T) *fakeAM {
	am := &fakeAM{t: t}
	am.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		am.mu.Lock()
		defer am.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/prefix/api/v2/alerts" {
			http.Error(w, "not here: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if am.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		am.auth = append(am.auth, r.Header.Get("Authorization"))
		body, _ := io.ReadAll(r.Body)
		var batch []postable
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		am.got = append(am.got, batch...)
	}))
	t.Cleanup(am.srv.Close)
	return am
}

func (am *fakeAM) setDown(down bool) {
	am.mu.Lock()
	am.down = down
	am.mu.Unlock()
}

// take returns and forgets what was posted.
func (am *fakeAM) take() []postable {
	am.mu.Lock()
	defer am.mu.Unlock()
	out := am.got
	am.got = nil
	return out
}

// waitFor polls until n alerts were posted, and returns them.
func (am *fakeAM) waitFor(n int) []postable {
	am.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		am.mu.Lock()
		got := len(am.got)
		am.mu.Unlock()
		if got >= n {
			// Nothing more should follow.
			time.Sleep(50 * time.Millisecond)
			return am.take()
		}
		if time.Now().After(deadline) {
			am.t.Fatalf("%d alerts posted, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// silences covers alerts of the rules it holds.
type silences struct {
	mu    sync.Mutex
	rules map[string]bool
}

func (s *silences) SilencedBy(a *alert.Alert) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rules[a.Rule] {
		return []string{"s1"}
	}
	return nil
}

func (s *silences) set(rule string, on bool) {
	s.mu.Lock()
	s.rules[rule] = on
	s.mu.Unlock()
}

// start runs a forwarder whose resend ticker never fires: tests call
// resend themselves.
func start(t *testing.T, cfg Config, sil Silencer) (*Forwarder, *prometheus.Registry) {
	t.Helper()
	if cfg.Resend == 0 {
		cfg.Resend = time.Hour
	}
	reg := prometheus.NewRegistry()
	f, err := New(cfg, sil, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range f.targets {
		tg.backoff = 40 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f, reg
}

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func kimLong(seq int, sev alert.Severity, status alert.Status, value float64) alert.Alert {
	a := alert.Alert{ID: "ep1", Fingerprint: "fp-kim-long", Rule: "river_level_kim_long", Status: status, Severity: sev,
		Kind: "environment", Type: "water_level", Metric: "height", Area: "kim-long", Source: "wl-kim-long",
		Value: value, Threshold: 2, StartsAt: t0, UpdatedAt: t0.Add(time.Duration(seq) * time.Minute),
		Summary: fmt.Sprintf("Mực nước sông Hương tại Kim Long %g m", value), Seq: seq,
		Labels: map[string]string{"river": "huong", "station": "kim-long", "severity": "ignored"}}
	if status == alert.StatusResolved {
		end := a.UpdatedAt
		a.EndsAt = &end
	}
	return a
}

func TestLabelsAnnotationsAndEndsAt(t *testing.T) {
	am := newFakeAM(t)
	f, _ := start(t, Config{URLs: []string{am.srv.URL + "/prefix/"}, ConsoleURL: "http://ioc.hue.gov.vn/"}, nil)
	before := time.Now()
	f.Share().Apply(kimLong(1, alert.Warning, alert.StatusFiring, 2.1))
	got := am.waitFor(1)[0]
	want := map[string]string{"alertname": "river_level_kim_long", "severity": "warning", "kind": "environment",
		"type": "water_level", "area": "kim-long", "source": "wl-kim-long", "fingerprint": "fp-kim-long",
		"river": "huong", "station": "kim-long"}
	if !equalMaps(got.Labels, want) {
		t.Errorf("labels %v, want %v", got.Labels, want)
	}
	wantAnn := map[string]string{"summary": "Mực nước sông Hương tại Kim Long 2.1 m", "value": "2.1", "threshold": "2",
		"area_name": "Kim Long"}
	if !equalMaps(got.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", got.Annotations, wantAnn)
	}
	if !got.StartsAt.Equal(t0) {
		t.Errorf("startsAt %s, want %s", got.StartsAt, t0)
	}
	// A firing alert ends a few resend intervals ahead (here 4 × 1h).
	if got.EndsAt == nil || got.EndsAt.Before(before.Add(4*time.Hour-time.Second)) || got.EndsAt.After(time.Now().Add(4*time.Hour)) {
		t.Errorf("endsAt %v, want 4h from now", got.EndsAt)
	}
	if got.GeneratorURL != "http://ioc.hue.gov.vn/#/alert/fp-kim-long" {
		t.Errorf("generatorURL %q", got.GeneratorURL)
	}
}

func TestEpisodeAsAlertmanagerSeesIt(t *testing.T) {
	am := newFakeAM(t)
	f, _ := start(t, Config{URLs: []string{am.srv.URL + "/prefix"}}, nil)
	s := f.Share()

	s.Apply(kimLong(1, alert.Info, alert.StatusFiring, 1.2))
	if got := am.waitFor(1); got[0].Labels["severity"] != "info" {
		t.Fatalf("first post %+v", got)
	}
	// An operator's ack changes nothing Alertmanager shows: not posted.
	ack := kimLong(2, alert.Info, alert.StatusFiring, 1.2)
	ack.AcknowledgedBy = "lan"
	s.Apply(ack)
	// The escalation ends the info alert (another label set) and fires
	// the warning one.
	s.Apply(kimLong(3, alert.Warning, alert.StatusFiring, 2.3))
	got := am.waitFor(2)
	bySev := map[string]postable{}
	for _, p := range got {
		bySev[p.Labels["severity"]] = p
	}
	if p := bySev["info"]; p.EndsAt == nil || !p.EndsAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("the info alert is not ended at the escalation: %+v", got)
	}
	if p := bySev["warning"]; p.EndsAt == nil || !p.EndsAt.After(time.Now()) || p.Annotations["value"] != "2.3" {
		t.Errorf("the warning alert is not firing: %+v", got)
	}
	// A late confirmation of the ack takes nothing back.
	s.Apply(ack)
	// The resolve ends the warning alert at the episode's end.
	s.Apply(kimLong(4, alert.Warning, alert.StatusResolved, 1.8))
	got = am.waitFor(1)
	if got[0].Labels["severity"] != "warning" || got[0].EndsAt == nil || !got[0].EndsAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("resolve posted %+v", got)
	}
	// Resolved alerts are re-sent a few times, then forgotten; the
	// info one ended at the escalation too.
	for i := 0; i < resolvedResends; i++ {
		f.resend()
		if got := am.waitFor(2); got[0].EndsAt == nil || got[1].EndsAt == nil {
			t.Fatalf("resend %d: %+v", i, got)
		}
	}
	f.resend()
	time.Sleep(50 * time.Millisecond)
	if got := am.take(); len(got) != 0 {
		t.Errorf("still re-sent after %d resends: %+v", resolvedResends, got)
	}
}

func TestSilencedNotSent(t *testing.T) {
	am := newFakeAM(t)
	sil := &silences{rules: map[string]bool{"river_level_kim_long": true}}
	f, _ := start(t, Config{URLs: []string{am.srv.URL + "/prefix"}}, sil)
	s := f.Share()
	s.Apply(kimLong(1, alert.Warning, alert.StatusFiring, 2.1))
	f.resend()
	time.Sleep(50 * time.Millisecond)
	if got := am.take(); len(got) != 0 {
		t.Fatalf("a silenced alert was sent: %+v", got)
	}
	// The maintenance window ends: the next resend sends it.
	sil.set("river_level_kim_long", false)
	f.resend()
	if got := am.waitFor(1); got[0].EndsAt == nil || !got[0].EndsAt.After(time.Now()) {
		t.Fatalf("not firing after the silence: %+v", got)
	}
	// A silence while it fires stops the re-sends (Alertmanager lets it
	// lapse), and its resolve is still sent: Alertmanager had it.
	sil.set("river_level_kim_long", true)
	f.resend()
	time.Sleep(50 * time.Millisecond)
	if got := am.take(); len(got) != 0 {
		t.Fatalf("re-sent while silenced: %+v", got)
	}
	s.Apply(kimLong(2, alert.Warning, alert.StatusResolved, 1.5))
	if got := am.waitFor(1); got[0].EndsAt == nil || !got[0].EndsAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("resolve: %+v", got)
	}
	// An episode silenced from start to end is never sent.
	other := kimLong(1, alert.Warning, alert.StatusFiring, 2.5)
	other.ID = "ep2"
	s.Apply(other)
	other = kimLong(2, alert.Warning, alert.StatusResolved, 1)
	other.ID = "ep2"
	s.Apply(other)
	time.Sleep(50 * time.Millisecond)
	for _, p := range am.take() {
		if !p.EndsAt.Equal(t0.Add(2 * time.Minute)) { // the first episode's re-sent resolve only
			t.Errorf("a silenced episode was sent: %+v", p)
		}
	}
}

func TestOutageLatestStateWins(t *testing.T) {
	am := newFakeAM(t)
	up := newFakeAM(t)
	f, reg := start(t, Config{URLs: []string{am.srv.URL + "/prefix", up.srv.URL + "/prefix"}, QueueSize: 2}, nil)
	s := f.Share()
	am.setDown(true)
	s.Apply(kimLong(1, alert.Info, alert.StatusFiring, 1.1))
	// The other Alertmanager is not held back by the one that is down.
	up.waitFor(1)
	waitMetric(t, reg, "ioc_alertmanager_alerts_failed_total", am.srv.URL+"/prefix", 1)
	// While it is down, the queue keeps the latest state of each alert.
	for _, v := range []float64{1.2, 1.3, 1.4} {
		a := kimLong(1, alert.Info, alert.StatusFiring, v)
		a.Summary = "x"
		s.Apply(a)
	}
	s.Apply(kimLong(2, alert.Warning, alert.StatusFiring, 2.2)) // info ended, warning firing: 2 queued
	third := kimLong(1, alert.Critical, alert.StatusFiring, 4)
	third.Fingerprint, third.ID = "fp-other", "ep9"
	s.Apply(third) // the queue is full: dropped, until the next resend
	if st := f.Status()[0]; st.Up || st.Queued != 2 || st.LastError == "" || st.FailingAt == nil {
		t.Errorf("status while down: %+v", st)
	}
	if got := metricValue(reg, "ioc_alertmanager_alerts_dropped_total", am.srv.URL+"/prefix"); got != 1 {
		t.Errorf("dropped %g, want 1", got)
	}
	am.setDown(false)
	got := am.waitFor(2)
	for _, p := range got {
		switch p.Labels["severity"] {
		case "info":
			if p.EndsAt == nil || p.EndsAt.After(time.Now()) || p.Annotations["value"] != "1.4" {
				t.Errorf("info: want its last state, ended: %+v", p)
			}
		case "warning":
			if p.EndsAt == nil || !p.EndsAt.After(time.Now()) {
				t.Errorf("warning: want firing: %+v", p)
			}
		default:
			t.Errorf("unexpected %+v", p)
		}
	}
	if st := f.Status()[0]; !st.Up || st.Queued != 0 || st.LastSent == nil {
		t.Errorf("status once back: %+v", st)
	}
	// The dropped alert goes at the next resend.
	f.resend()
	found := false
	got = am.waitFor(3)
	for _, p := range got {
		found = found || p.Labels["fingerprint"] == "fp-other"
	}
	if !found {
		t.Error("the dropped alert was not re-sent")
	}
}

func TestShareCloseStopsResends(t *testing.T) {
	am := newFakeAM(t)
	f, _ := start(t, Config{URLs: []string{am.srv.URL + "/prefix"}}, nil)
	mine, theirs := f.Share(), f.Share()
	mine.Apply(kimLong(1, alert.Warning, alert.StatusFiring, 2.1))
	other := kimLong(1, alert.Warning, alert.StatusFiring, 2.1)
	other.Fingerprint = "fp-2"
	theirs.Apply(other)
	am.waitFor(2)
	mine.Close() // the partition moved: its next owner re-sends
	f.resend()
	got := am.waitFor(1)
	if len(got) != 1 || got[0].Labels["fingerprint"] != "fp-2" {
		t.Errorf("after Close, resend posted %+v", got)
	}
}

func TestAuthHeaders(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bearer", Config{BearerToken: "s3cret"}, "Bearer s3cret"},
		{"basic", Config{Username: "ioc", Password: "pw"}, "Basic aW9jOnB3"},
		{"none", Config{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			am := newFakeAM(t)
			tt.cfg.URLs = []string{am.srv.URL + "/prefix"}
			f, _ := start(t, tt.cfg, nil)
			f.Share().Apply(kimLong(1, alert.Warning, alert.StatusFiring, 2.1))
			am.waitFor(1)
			am.mu.Lock()
			defer am.mu.Unlock()
			if am.auth[0] != tt.want {
				t.Errorf("Authorization %q, want %q", am.auth[0], tt.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no URL"},
		{Config{URLs: []string{"am:9093"}}, "not an http(s) address"},
		{Config{URLs: []string{"ftp://user:pw@am:9093"}}, `"ftp://am:9093" is not`},
		{Config{URLs: []string{"http://am:9093"}, TLSCA: "/nonexistent/ca.pem"}, "IOC_ALERTMANAGER_TLS_CA"},
	} {
		_, err := New(tt.cfg, nil, prometheus.NewRegistry(), zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

// metricValue is one series of a counter registered on reg.
func metricValue(reg *prometheus.Registry, name, label string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if m.Label[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func waitMetric(t *testing.T, reg *prometheus.Registry, name, label string, atLeast float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metricValue(reg, name, label)
		if got >= atLeast {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{alertmanager=%q} = %g, want ≥ %g", name, label, got, atLeast)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
