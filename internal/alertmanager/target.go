package alertmanager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// maxBatch bounds the alerts of one request.
const maxBatch = 500

// target is one Alertmanager: its queue and the goroutine posting it.
type target struct {
	endpoint string // …/api/v2/alerts
	name     string // the URL without credentials, for logs and metrics
	cfg      Config
	client   *http.Client
	log      zerolog.Logger
	now      func() time.Time
	backoff  time.Duration // the longest wait between attempts

	sent, failed, dropped prometheus.Counter
	queued                prometheus.Gauge
	latency               prometheus.Observer

	mu        sync.Mutex
	queue     map[string]queued // by label set: the latest state wins
	wake      chan struct{}
	lastSent  time.Time
	lastErr   string
	failingAt time.Time // zero while up
}

func newTarget(u *url.URL, cfg Config, client *http.Client, m *metrics, log zerolog.Logger) *target {
	ep := *u
	ep.Path = strings.TrimSuffix(ep.Path, "/") + "/api/v2/alerts"
	name := redact(u.String())
	return &target{endpoint: ep.String(), name: name, cfg: cfg, backoff: min(cfg.Resend, 10*time.Second), client: client, log: log.With().Str("alertmanager", name).Logger(),
		now: time.Now, sent: m.sent.WithLabelValues(name), failed: m.failed.WithLabelValues(name),
		dropped: m.dropped.WithLabelValues(name), queued: m.queued.WithLabelValues(name),
		latency: m.latency.WithLabelValues(name), queue: map[string]queued{}, wake: make(chan struct{}, 1)}
}

// queued is an alert waiting to be posted; ver tells a newer state of the
// same label set that came while it was in flight.
type queued struct {
	p   postable
	ver uint64
}

// enqueue replaces the queued state of p's label set, or adds it while
// the queue has room. A re-send always has room: it is of an alert the
// forwarder holds anyway, and one a full queue dropped is sent this way.
func (t *target) enqueue(p postable, resend bool) {
	t.mu.Lock()
	cur, had := t.queue[p.key]
	if !had && !resend && len(t.queue) >= t.cfg.QueueSize {
		t.mu.Unlock()
		t.dropped.Inc()
		return
	}
	t.queue[p.key] = queued{p, cur.ver + 1}
	t.queued.Set(float64(len(t.queue)))
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// peek returns up to n queued alerts, leaving them queued: the queue is
// what Alertmanager has yet to accept, and its bound holds in flight too.
func (t *target) peek(n int) []queued {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]queued, 0, min(n, len(t.queue)))
	for _, q := range t.queue {
		if len(out) == n {
			break
		}
		out = append(out, q)
	}
	return out
}

// done removes a posted batch, except the alerts that got a newer state
// while it was in flight.
func (t *target) done(batch []queued) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, q := range batch {
		if t.queue[q.p.key].ver == q.ver {
			delete(t.queue, q.p.key)
		}
	}
	t.queued.Set(float64(len(t.queue)))
}

// run posts what is queued, backing off while the Alertmanager fails.
func (t *target) run(ctx context.Context) {
	maxWait := t.backoff
	wait := min(250*time.Millisecond, maxWait)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		for ctx.Err() == nil {
			batch := t.peek(maxBatch)
			if len(batch) == 0 {
				break
			}
			if err := t.post(ctx, batch); err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				wait = min(2*wait, maxWait)
				continue
			}
			t.done(batch)
			wait = min(250*time.Millisecond, maxWait)
		}
	}
}

// flush makes one attempt to post what is still queued.
func (t *target) flush(ctx context.Context) {
	for ctx.Err() == nil {
		batch := t.peek(maxBatch)
		if len(batch) == 0 || t.post(ctx, batch) != nil {
			return
		}
		t.done(batch)
	}
}

// post sends one batch and records the outcome.
func (t *target) post(ctx context.Context, batch []queued) error {
	start := t.now()
	err := t.do(ctx, batch)
	t.latency.Observe(time.Since(start).Seconds())
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed.Add(float64(len(batch)))
		if t.failingAt.IsZero() {
			t.failingAt = t.now()
			// Once per outage: the retries that follow are counted, not logged.
			t.log.Warn().Err(err).Int("alerts", len(batch)).Msg("Alertmanager unreachable; alerts queued and retried")
		}
		t.lastErr = err.Error()
		return err
	}
	t.sent.Add(float64(len(batch)))
	t.lastSent = t.now()
	if !t.failingAt.IsZero() {
		t.log.Info().Dur("down_for", t.lastSent.Sub(t.failingAt)).Msg("Alertmanager reachable again")
		t.failingAt, t.lastErr = time.Time{}, ""
	}
	return nil
}

func (t *target) do(ctx context.Context, batch []queued) error {
	now := t.now()
	body := make([]postable, len(batch))
	for i, q := range batch {
		p := q.p
		if p.EndsAt == nil {
			end := now.Add(endsAtIntervals * t.cfg.Resend)
			p.EndsAt = &end
		}
		body[i] = p
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "iocd")
	switch {
	case t.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+t.cfg.BearerToken)
	case t.cfg.Username != "":
		req.SetBasicAuth(t.cfg.Username, t.cfg.Password)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", t.name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (t *target) status() TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := TargetStatus{URL: t.name, Up: t.failingAt.IsZero(), Queued: len(t.queue), LastError: t.lastErr}
	if !t.lastSent.IsZero() {
		at := t.lastSent
		s.LastSent = &at
	}
	if !t.failingAt.IsZero() {
		at := t.failingAt
		s.FailingAt = &at
	}
	return s
}

// redact drops the credentials of a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

func tlsConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: IOC_ALERTMANAGER_TLS_CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("alertmanager: IOC_ALERTMANAGER_TLS_CA %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// metrics are the forwarder's, labelled by Alertmanager.
type metrics struct {
	sent, failed, dropped *prometheus.CounterVec
	queued                *prometheus.GaugeVec
	latency               *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	l := []string{"alertmanager"}
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_alertmanager_alerts_sent_total",
			Help: "Alerts Alertmanager accepted, re-sends included."}, l),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_alertmanager_alerts_failed_total",
			Help: "Alerts of requests that failed (queued again and retried)."}, l),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_alertmanager_alerts_dropped_total",
			Help: "Alerts not queued because the queue was full (a firing one is sent again at the next resend)."}, l),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ioc_alertmanager_queue_length",
			Help: "Alerts waiting to be sent."}, l),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ioc_alertmanager_request_duration_seconds",
			Help: "Time of one POST /api/v2/alerts.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, l),
	}
	reg.MustRegister(m.sent, m.failed, m.dropped, m.queued, m.latency)
	return m
}
