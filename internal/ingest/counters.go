package ingest

import (
	"github.com/iocstream/iocstream/internal/event"
	"github.com/iocstream/iocstream/internal/metrics"
)

// counters accumulate per-batch counts so the hot path touches no
// Prometheus label maps; they are added to the metrics at each seal.
type counters struct {
	byKind   map[string]*kindCounts
	received map[string]uint64 // rejected messages, by the kind they claimed
	rejected map[rejKey]uint64
}

type kindCounts struct {
	received, accepted, duplicate, corrected, dropped uint64
}

type rejKey struct {
	kind   string
	reason event.Reason
}

func newCounters() counters {
	return counters{byKind: map[string]*kindCounts{}, received: map[string]uint64{}, rejected: map[rejKey]uint64{}}
}

func (c *counters) kind(k string) *kindCounts {
	kc := c.byKind[k]
	if kc == nil {
		kc = &kindCounts{}
		c.byKind[k] = kc
	}
	return kc
}

func (c *counters) flush(m *metrics.Metrics) {
	for k, kc := range c.byKind {
		if *kc == (kindCounts{}) {
			continue
		}
		m.Received.WithLabelValues(k).Add(float64(kc.received))
		m.Accepted.WithLabelValues(k).Add(float64(kc.accepted))
		m.Duplicate.WithLabelValues(k).Add(float64(kc.duplicate))
		m.Late.WithLabelValues(k, "corrected").Add(float64(kc.corrected))
		m.Late.WithLabelValues(k, "dropped").Add(float64(kc.dropped))
		*kc = kindCounts{}
	}
	for k, n := range c.received {
		m.Received.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range c.rejected {
		m.Rejected.WithLabelValues(k.kind, string(k.reason)).Add(float64(n))
	}
	clear(c.received)
	clear(c.rejected)
}
