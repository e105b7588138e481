// Package quality keeps the data-quality telemetry of every event source:
// when it last sent, how late its events arrive, and how many were
// accepted, corrected, dropped as too late or duplicated. Operators use it
// to tell a silent or misbehaving sensor from a quiet city.
//
// The pipeline goroutine records; readers (the HTTP API) get an immutable
// snapshot that is refreshed at every batch, so the hot path takes no lock.
package quality

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/window"
)

// Source is what is known of one source.
type Source struct {
	Source        string    `json:"source"`
	Kind          string    `json:"kind"`
	Type          string    `json:"type"`
	Area          string    `json:"area"`
	LastEventTime time.Time `json:"lastEventTime"` // newest event time seen
	LastSeen      time.Time `json:"lastSeen"`      // processing time of its last event
	// FreshnessSeconds is how long ago, at the snapshot, its newest event
	// happened: a sensor's clock or its silence, seen from here.
	FreshnessSeconds float64 `json:"freshnessSeconds"`
	Accepted         uint64  `json:"accepted"`
	Corrected        uint64  `json:"corrected"`
	// Dropped counts messages: an event beyond the correction horizon is
	// not remembered, so each repeat of it is dropped (and counted) again.
	Dropped            uint64  `json:"droppedTooLate"`
	Duplicates         uint64  `json:"duplicates"`
	Late               uint64  `json:"late"` // older than the source's newest event when it arrived
	MaxLatenessSeconds float64 `json:"maxLatenessSeconds"`

	changed bool // since the last Publish (a flag, not a set: no map write per event)
}

// Tracker records per-source telemetry.
type Tracker struct {
	by       map[string]*Source
	changed  []*Source
	snap     atomic.Pointer[[]Source]
	lateness prometheus.Histogram
	lastSeen *prometheus.GaugeVec
}

// New registers the metrics on reg and returns an empty tracker.
func New(reg prometheus.Registerer) *Tracker {
	t := &Tracker{
		by: map[string]*Source{},
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ioc_event_lateness_seconds",
			Help:    "How far behind its source's newest event time an event arrives (0 when in order).",
			Buckets: []float64{0, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 3 * 3600, 24 * 3600}}),
		lastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ioc_source_last_event_timestamp_seconds",
			Help: "Newest event time seen from each source (Unix seconds): now minus this is its freshness."},
			[]string{"kind", "source"}),
	}
	reg.MustRegister(t.lateness, t.lastSeen)
	empty := []Source{}
	t.snap.Store(&empty)
	return t
}

// Event records one decoded event and what the windows did with it;
// latestBefore is the source's newest event time before it.
func (t *Tracker) Event(ev *event.Event, disp window.Disposition, latestBefore, nowMs int64) {
	s, ok := t.by[ev.Source]
	if !ok {
		// The event's strings may point into a reused buffer.
		s = &Source{Source: strings.Clone(ev.Source), Kind: strings.Clone(ev.Kind), Type: strings.Clone(ev.Type), Area: strings.Clone(ev.Area)}
		t.by[s.Source] = s
	}
	if !s.changed {
		s.changed = true
		t.changed = append(t.changed, s)
	}
	s.LastSeen = time.UnixMilli(nowMs)
	switch disp {
	case window.Duplicate:
		s.Duplicates++
		return
	case window.Corrected:
		s.Corrected++
	case window.Dropped:
		s.Dropped++
	}
	s.Accepted++
	lateness := 0.0
	if latestBefore > ev.TimeMs {
		lateness = float64(latestBefore-ev.TimeMs) / 1000
		s.Late++
		s.MaxLatenessSeconds = max(s.MaxLatenessSeconds, lateness)
	}
	t.lateness.Observe(lateness)
	if et := time.UnixMilli(ev.TimeMs); et.After(s.LastEventTime) {
		s.LastEventTime = et
	}
}

// Publish refreshes the snapshot and the per-source gauges; the pipeline
// calls it once per batch.
func (t *Tracker) Publish(now time.Time) {
	for _, s := range t.changed {
		t.lastSeen.WithLabelValues(s.Kind, s.Source).Set(float64(s.LastEventTime.UnixMilli()) / 1000)
		s.changed = false
	}
	clear(t.changed)
	t.changed = t.changed[:0]
	out := make([]Source, 0, len(t.by))
	for _, s := range t.by {
		c := *s
		c.FreshnessSeconds = now.Sub(c.LastEventTime).Seconds()
		out = append(out, c)
	}
	Sort(out)
	t.snap.Store(&out)
}

// Sort orders sources the stalest first: the ones an operator should look at.
func Sort(out []Source) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].FreshnessSeconds != out[j].FreshnessSeconds {
			return out[i].FreshnessSeconds > out[j].FreshnessSeconds
		}
		return out[i].Source < out[j].Source
	})
}

// Sibling is an empty tracker exporting through the same metrics: each
// pipeline of a partitioned iocd records its own sources.
func (t *Tracker) Sibling() *Tracker {
	s := &Tracker{by: map[string]*Source{}, lateness: t.lateness, lastSeen: t.lastSeen}
	empty := []Source{}
	s.snap.Store(&empty)
	return s
}

// Snapshot returns the sources as of the last Publish; safe from any
// goroutine, and the caller must not modify it.
func (t *Tracker) Snapshot() []Source { return *t.snap.Load() }
