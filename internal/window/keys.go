package window

import (
	"slices"

	"github.com/iocstream/iocstream/internal/event"
)

// aggKey is what an aggregate of a source's window is of.
type aggKey struct{ kind, typ, area, metric string }

// keyTable interns aggregate keys: an aggregate holds a uint32 into it
// instead of four strings, which makes it 56 bytes smaller (a city holds
// millions) and its lookup an integer comparison. A key is not forgotten
// when its last aggregate leaves the horizon; compactKeys rebuilds the
// table instead, once it has doubled, so that a publisher inventing areas
// or metric names cannot grow it forever.
type keyTable struct {
	keys []aggKey
	idx  map[aggKey]uint32
	live int // len(keys) after the last rebuild
}

// keysFloor is the table size below which it is never rebuilt: a city's
// kinds, types, areas and metrics make a few thousand keys.
const keysFloor = 4096

func (t *keyTable) intern(k aggKey) uint32 {
	if i, ok := t.idx[k]; ok {
		return i
	}
	if t.idx == nil {
		t.idx = make(map[aggKey]uint32)
	}
	i := uint32(len(t.keys))
	t.keys = append(t.keys, k)
	t.idx[k] = i
	return i
}

// eventKeys caches the keys of a source's last event: a source's events
// mostly carry the same kind, type, area and metrics, so the table is
// consulted only when they change.
type eventKeys struct {
	kind, typ, area string
	metrics         []string
	idx             []uint32 // one per metric, then EventsMetric's
}

// keysOf returns the aggregate keys of ev, one per metric and then the
// event count's. The slice is src's cache: valid until the next call.
func (s *Set) keysOf(src *source, ev *event.Event) []uint32 {
	c := &src.keys
	if c.idx != nil && c.kind == ev.Kind && c.typ == ev.Type && c.area == ev.Area && slices.Equal(c.metrics, ev.MetricNames) {
		return c.idx
	}
	c.kind, c.typ, c.area = ev.Kind, ev.Type, ev.Area
	c.metrics = append(c.metrics[:0], ev.MetricNames...)
	c.idx = c.idx[:0]
	for _, m := range ev.MetricNames {
		c.idx = append(c.idx, s.keys.intern(aggKey{ev.Kind, ev.Type, ev.Area, m}))
	}
	c.idx = append(c.idx, s.keys.intern(aggKey{ev.Kind, ev.Type, ev.Area, EventsMetric}))
	return c.idx
}

// compactKeys rebuilds the key table from the keys the aggregates still
// use, once it has doubled since the last rebuild.
func (s *Set) compactKeys() {
	if len(s.keys.keys) < max(keysFloor, 2*s.keys.live) {
		return
	}
	old := s.keys.keys
	s.keys = keyTable{}
	for _, src := range s.sources {
		src.keys.idx = nil // the cache holds old indices
		for _, l := range src.slots {
			for _, sl := range l {
				s.remapKeys(sl, old)
			}
		}
	}
	s.keys.live = len(s.keys.keys)
}

// remapKeys points sl's aggregates at the rebuilt table's indices.
func (s *Set) remapKeys(sl *slot, old []aggKey) {
	wasFrozen := sl.frozen()
	sl.thaw()
	for i := range sl.aggs {
		sl.aggs[i].key = s.keys.intern(old[sl.aggs[i].key])
	}
	if sl.index != nil {
		sl.reindex()
	}
	if wasFrozen {
		s.pack, s.remap = sl.freeze(s.pack, s.remap)
	}
}
