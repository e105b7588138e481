// Package alertmanager forwards iocd's alerts to Prometheus Alertmanager
// (POST /api/v2/alerts, CONTRACT.md section 10), so a city's existing
// on-call routing (mail, chat, SMS gateways) carries them.
//
// It never slows the pipeline: Apply only records the alert's state under
// a lock, and one goroutine per Alertmanager posts it. Each Alertmanager
// has a bounded queue keyed by the alert's label set, so while one is down
// the latest state of each alert waits and older ones are overwritten.
// Firing alerts are re-sent every resend interval with endsAt a few
// intervals ahead, as Prometheus does: Alertmanager then never times them
// out on its own, and one that restarted (it keeps alerts in memory only)
// has them again after one interval. Resolved alerts are re-sent a few
// times for the same reason.
package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/city"
)

// Config is how iocd reaches its Alertmanagers.
type Config struct {
	// URLs are the Alertmanagers' base addresses (http://host:9093, with a
	// path prefix if it serves under one); each gets every alert, as
	// Prometheus does for an HA pair.
	URLs []string
	// Resend is how often firing alerts are sent again; 1m when zero.
	Resend time.Duration
	// Username and Password, or BearerToken, authenticate the requests.
	Username    string
	Password    string
	BearerToken string
	// TLSCA is a PEM file of the CA that signed the Alertmanagers'
	// certificates, for https URLs with a private CA.
	TLSCA string
	// ConsoleURL is the console's address as operators reach it; each
	// alert's generatorURL links to its detail there.
	ConsoleURL string
	// QueueSize bounds the transitions waiting for one Alertmanager;
	// 10 000 when zero. Re-sends do not count: they are of the alerts the
	// forwarder holds (those firing and those just resolved).
	QueueSize int
	// Timeout bounds one request; 10s when zero.
	Timeout time.Duration
}

// Silencer tells which of iocd's silences cover an alert now;
// *silence.Store implements it.
type Silencer interface {
	SilencedBy(a *alert.Alert) []string
}

const (
	// endsAtIntervals is how many resend intervals ahead a firing alert's
	// endsAt is: missing a few resends does not resolve it.
	endsAtIntervals = 4
	// resolvedResends is how many resend intervals a resolved alert is
	// still sent for, so an Alertmanager that restarted meanwhile does
	// not keep it firing until its endsAt.
	resolvedResends = 3
)

// Forwarder sends alerts to every configured Alertmanager. It is safe
// for concurrent use.
type Forwarder struct {
	cfg      Config
	silences Silencer // may be nil
	targets  []*target
	log      zerolog.Logger
	now      func() time.Time

	mu       sync.Mutex
	active   map[string]*entry    // firing alerts, by fingerprint
	resolved map[string]*resolved // recently resolved label sets, by key
}

// entry is a firing alert and what Alertmanager last got of it.
type entry struct {
	alert alert.Alert
	share *Share
	sent  *postable // nil: not sent in this episode's current label set
}

type resolved struct {
	p    postable
	left int
}

// New checks the configuration and builds a forwarder; Run starts it.
// silences may be nil. Metrics go to reg.
func New(cfg Config, silences Silencer, reg prometheus.Registerer, log zerolog.Logger) (*Forwarder, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("alertmanager: no URL")
	}
	if cfg.Resend <= 0 {
		cfg.Resend = time.Minute
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	f := &Forwarder{cfg: cfg, silences: silences, log: log.With().Str("component", "alertmanager").Logger(),
		now: time.Now, active: map[string]*entry{}, resolved: map[string]*resolved{}}
	seen := map[string]bool{}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager: IOC_ALERTMANAGER_URL %q is not an http(s) address", redact(raw))
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		f.targets = append(f.targets, newTarget(u, cfg, client, m, f.log))
	}
	return f, nil
}

// Run posts queued alerts and re-sends the active ones every resend
// interval until ctx ends, then makes one short last attempt to deliver
// what is queued.
func (f *Forwarder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range f.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.run(ctx)
		}()
	}
	tick := time.NewTicker(f.cfg.Resend)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			last, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for _, t := range f.targets {
				t.flush(last)
			}
			return
		case <-tick.C:
			f.resend()
		}
	}
}

// Share is one owner's view of the forwarder: a pipeline applies the
// transitions it decides through it, and closes it when it stops owning
// them (in partitioned mode, when its partition's lease ends), so only the
// owner re-sends an alert.
type Share struct{ f *Forwarder }

// Share returns a new owner's view.
func (f *Forwarder) Share() *Share { return &Share{f} }

// Apply forwards a stored transition; it never waits for Alertmanager.
func (s *Share) Apply(a alert.Alert) { s.f.apply(s, a) }

// Close forgets the share's firing alerts without resolving them: their
// next owner sends them on, and until then Alertmanager keeps them up to
// their endsAt.
func (s *Share) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for fp, e := range s.f.active {
		if e.share == s {
			delete(s.f.active, fp)
		}
	}
}

func (f *Forwarder) apply(s *Share, a alert.Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.active[a.Fingerprint]
	if a.Status == alert.StatusResolved {
		delete(f.active, a.Fingerprint)
		if e != nil && e.sent == nil {
			return // silenced all along: Alertmanager never had it
		}
		if e == nil && f.silenced(&a) {
			return
		}
		p := f.postable(&a)
		if e != nil && e.sent.key != p.key {
			p = e.sent.resolve(a.UpdatedAt) // the label set Alertmanager has
		}
		f.sendResolved(p)
		return
	}
	if e != nil && e.alert.ID == a.ID && a.Seq < e.alert.Seq {
		return // a late confirmation of an older transition
	}
	p := f.postable(&a)
	if e == nil {
		e = &entry{}
		f.active[a.Fingerprint] = e
	}
	if e.sent != nil && e.sent.key != p.key {
		// An escalation (or de-escalation) changes the severity label,
		// which makes it another alert for Alertmanager: end the old one.
		f.sendResolved(e.sent.resolve(a.UpdatedAt))
		e.sent = nil
	}
	e.alert, e.share = a, s
	if f.silenced(&a) {
		return
	}
	if e.sent != nil && e.sent.same(&p) {
		return // an operator's action: nothing Alertmanager shows changed
	}
	e.sent = &p
	f.enqueue(p, false)
}

// resend queues every active alert no silence covers and the recently
// resolved ones again.
func (f *Forwarder) resend() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.active {
		if f.silenced(&e.alert) {
			continue
		}
		p := f.postable(&e.alert)
		e.sent = &p
		f.enqueue(p, true)
	}
	for k, r := range f.resolved {
		f.enqueue(r.p, true)
		if r.left--; r.left <= 0 {
			delete(f.resolved, k)
		}
	}
}

func (f *Forwarder) sendResolved(p postable) {
	f.resolved[p.key] = &resolved{p: p, left: resolvedResends}
	f.enqueue(p, false)
}

func (f *Forwarder) enqueue(p postable, resend bool) {
	for _, t := range f.targets {
		t.enqueue(p, resend)
	}
}

func (f *Forwarder) silenced(a *alert.Alert) bool {
	return f.silences != nil && len(f.silences.SilencedBy(a)) > 0
}

// postable is one alert as Alertmanager's API takes it. key identifies
// its label set. A firing one has no endsAt: it is set when it is posted.
type postable struct {
	key          string
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL"`
}

// postable builds the Alertmanager alert of a transition: the labels and
// annotations of CONTRACT.md section 10.
func (f *Forwarder) postable(a *alert.Alert) postable {
	labels := make(map[string]string, len(a.Labels)+7)
	for k, v := range a.Labels {
		labels[k] = v
	}
	// iocd's own labels win over a rule's label of the same name.
	for k, v := range map[string]string{"alertname": a.Rule, "severity": string(a.Severity), "kind": a.Kind,
		"type": a.Type, "area": a.Area, "source": a.Source, "fingerprint": a.Fingerprint} {
		if v != "" {
			labels[k] = v
		}
	}
	ann := map[string]string{
		"summary":   a.Summary,
		"value":     strconv.FormatFloat(a.Value, 'g', -1, 64),
		"threshold": strconv.FormatFloat(a.Threshold, 'g', -1, 64),
	}
	if i := city.Index(a.Area); i >= 0 {
		ann["area_name"] = city.At(i).Name
	}
	p := postable{key: a.Fingerprint + "\x00" + string(a.Severity), Labels: labels, Annotations: ann,
		StartsAt: a.StartsAt, GeneratorURL: f.generatorURL(a.Fingerprint)}
	if a.Status == alert.StatusResolved {
		end := a.UpdatedAt
		if a.EndsAt != nil {
			end = *a.EndsAt
		}
		p.EndsAt = &end
	}
	return p
}

// resolve is the same Alertmanager alert ended at t.
func (p postable) resolve(t time.Time) postable {
	p.EndsAt = &t
	return p
}

// same tells whether Alertmanager would show p and q alike.
func (p *postable) same(q *postable) bool {
	return p.key == q.key && p.StartsAt.Equal(q.StartsAt) && equalMaps(p.Labels, q.Labels) &&
		equalMaps(p.Annotations, q.Annotations)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (f *Forwarder) generatorURL(fingerprint string) string {
	if f.cfg.ConsoleURL == "" {
		return ""
	}
	return strings.TrimSuffix(f.cfg.ConsoleURL, "/") + "/#/alert/" + url.PathEscape(fingerprint)
}

// TargetStatus is one Alertmanager's delivery state, for /api/v1/status.
type TargetStatus struct {
	URL       string     `json:"url"`
	Up        bool       `json:"up"`
	Queued    int        `json:"queued"`
	LastSent  *time.Time `json:"lastSent,omitempty"`
	LastError string     `json:"lastError,omitempty"`
	FailingAt *time.Time `json:"failingSince,omitempty"`
}

// Status reports each Alertmanager's delivery state.
func (f *Forwarder) Status() []TargetStatus {
	out := make([]TargetStatus, 0, len(f.targets))
	for _, t := range f.targets {
		out = append(out, t.status())
	}
	return out
}

// httpClient is the client every target uses: the CA when given.
func httpClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLSCA != "" {
		tc, err := tlsConfig(cfg.TLSCA)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, nil
}
