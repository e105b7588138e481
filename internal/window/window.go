// Package window keeps the event-time tumbling windows of CONTRACT.md
// section 3: per-source watermarks, idle finalisation, early partial
// results, corrections inside the horizon and deduplication by event id.
//
// It does no I/O and is not safe for concurrent use: one pipeline goroutine
// owns a Set. Times are Unix milliseconds; "now" is processing time and only
// the idle timeout reads it, so replaying history gives the same windows.
package window

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/iocstream/iocstream/internal/event"
)

// EventsMetric is the synthetic metric every event counts one in.
const EventsMetric = "events"

// Config holds the window settings of the contract.
type Config struct {
	Sizes             []time.Duration
	AllowedLateness   time.Duration
	IdleTimeout       time.Duration
	CorrectionHorizon time.Duration
}

// Validate reports settings the window logic cannot work with.
func (c Config) Validate() error {
	if len(c.Sizes) == 0 {
		return fmt.Errorf("window: at least one window size is needed")
	}
	for _, s := range c.Sizes {
		if s < time.Second || s%time.Second != 0 {
			return fmt.Errorf("window: size %s must be a whole number of seconds, at least 1s", s)
		}
	}
	if c.AllowedLateness < 0 || c.IdleTimeout <= 0 {
		return fmt.Errorf("window: allowed lateness must be ≥ 0 and idle timeout > 0")
	}
	if c.CorrectionHorizon < c.AllowedLateness {
		return fmt.Errorf("window: correction horizon %s must be at least the allowed lateness %s", c.CorrectionHorizon, c.AllowedLateness)
	}
	return nil
}

// Disposition says what Add did with an event.
type Disposition int

const (
	// Accepted: the event was aggregated into open windows.
	Accepted Disposition = iota
	// Corrected: the event was late and updated at least one final window.
	Corrected
	// Dropped: the event was older than the correction horizon for every size.
	Dropped
	// Duplicate: an event with this id was already counted.
	Duplicate
)

func (d Disposition) String() string {
	return [...]string{"accepted", "corrected", "dropped", "duplicate"}[d]
}

// Row is one window aggregate to store.
type Row struct {
	StartMs, SizeMs                  int64
	Kind, Type, Metric, Area, Source string
	Count                            uint64
	Sum, Min, Max, First, Last       float64
	Final                            bool
}

// Set holds the windows of every source.
type Set struct {
	sizesMs    []int64
	minSizeMs  int64
	latenessMs int64
	idleMs     int64
	horizonMs  int64
	seed       maphash.Seed
	keys       keyTable
	sources    map[string]*source
	open       map[*source]struct{} // sources with windows not yet final
	// Sources with changes not yet collected, and sources not idle: lists
	// with a flag on the source rather than sets, since every event
	// would otherwise write to both maps.
	dirty       []*source
	active      []*source
	openWindows int
	// updates is the log of what became final, in the order of the events
	// that decided it (see Update); restoring turns it off.
	updates   []Update
	restoring bool
	closing   []*slot // scratch of finalize
	remap     []int32 // scratch of slot.compactIDs
	pack      []byte  // scratch of slot.freeze
	idle      []*source
}

// Update is one decision of the windows, logged in the order of the events
// that caused it, so that a consumer reading the log decides the same way
// whatever the batching: either a pane of the smallest size became final
// or was corrected (Row, with the pane's content at that moment), or a
// source's progress moved (Progress).
type Update struct {
	Row Row
	// Progress: every pane of Row.Source ending at or before DoneMs is
	// final. DoneMs is math.MaxInt64 while the source is idle (nothing is
	// expected from it); it comes back down when the source speaks again.
	Progress bool
	DoneMs   int64
}

// New returns an empty Set.
func New(cfg Config) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Set{
		latenessMs: cfg.AllowedLateness.Milliseconds(),
		idleMs:     cfg.IdleTimeout.Milliseconds(),
		horizonMs:  cfg.CorrectionHorizon.Milliseconds(),
		seed:       maphash.MakeSeed(),
		sources:    make(map[string]*source),
		open:       make(map[*source]struct{}),
	}
	for _, size := range cfg.Sizes {
		s.sizesMs = append(s.sizesMs, size.Milliseconds())
	}
	sort.Slice(s.sizesMs, func(i, j int) bool { return s.sizesMs[i] < s.sizesMs[j] })
	s.minSizeMs = s.sizesMs[0]
	return s, nil
}

// source is the state of one event source.
type source struct {
	name       string
	seq        int        // how many sources the Set knew before this one
	latestMs   int64      // latest event time seen; math.MinInt64 before the first
	lastSeenMs int64      // processing time of the last event
	doneMs     int64      // every smallest pane ending at or before it is final (see Update)
	nextEndMs  int64      // the earliest end of an open slot; math.MaxInt64 when none
	slots      []slotList // by size index
	ids        idSet
	keys       eventKeys // of the last event

	// What collectSource and finalize need without a scan of every slot
	// (a city has thousands of sources, each an hour of slots): the slots
	// marked dirty since they were last written, the open slots, and the
	// horizon at which the oldest slot and dedup bucket leave it.
	dirtySlots   []keyedSlot
	open         []keyedSlot
	pruneSlotsAt int64 // min endMs of the slots; MaxInt64 when none
	pruneIDsAt   int64 // min bucket end of ids; MaxInt64 when none
	inDirty      bool  // in Set.dirty
	inActive     bool  // in Set.active
}

// changed puts src in the sources to collect.
func (s *Set) changed(src *source) {
	if !src.inDirty {
		src.inDirty = true
		s.dirty = append(s.dirty, src)
	}
}

// aggHint is how many aggregates the source's newest slot of size index
// i holds, 0 when it has none.
func (src *source) aggHint(i int) int {
	if sl := src.slots[i].newest(); sl != nil {
		return sl.aggCount()
	}
	return 0
}

// slot returns the source's slot of size index i starting at start, and
// where in the list it is or would go.
func (src *source) slot(i int, start int64) (*slot, int) {
	j, ok := src.slots[i].find(start)
	if !ok {
		return nil, j
	}
	return src.slots[i][j], j
}

// slotCount is how many slots the source holds, of every size.
func (src *source) slotCount() int {
	n := 0
	for _, l := range src.slots {
		n += len(l)
	}
	return n
}

// keyedSlot is a slot with its key, reached without a map lookup (a city
// collects thousands every 100 ms).
type keyedSlot struct {
	key slotKey
	sl  *slot
}

// markDirty marks sl changed since it was last written.
func (src *source) markDirty(key slotKey, sl *slot) {
	if !sl.dirty {
		sl.dirty = true
		src.dirtySlots = append(src.dirtySlots, keyedSlot{key, sl})
	}
}

// Start is the start of the window of sizeMs that holds tMs: windows are
// aligned to the epoch, before 1970 too.
func Start(tMs, sizeMs int64) int64 { return floorDiv(tMs, sizeMs) * sizeMs }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (s *Set) source(name string) *source {
	src := s.sources[name]
	if src == nil {
		src = &source{name: name, seq: len(s.sources), latestMs: math.MinInt64, doneMs: math.MinInt64, nextEndMs: math.MaxInt64,
			slots:        make([]slotList, len(s.sizesMs)),
			pruneSlotsAt: math.MaxInt64, pruneIDsAt: math.MaxInt64}
		s.sources[name] = src
	}
	return src
}

// Add counts ev, seen at processing time nowMs. It returns what happened to
// the event and the source's latest event time before it, which the caller
// stores with the raw event so that Restore repeats the same decision.
func (s *Set) Add(ev *event.Event, nowMs int64) (Disposition, int64) {
	src := s.source(ev.Source)
	latestBefore := src.latestMs
	src.lastSeenMs = nowMs
	bucket := floorDiv(ev.TimeMs, s.minSizeMs) * s.minSizeMs
	h := maphash.String(s.seed, ev.ID)
	if src.ids.has(bucket, h) {
		return Duplicate, latestBefore
	}
	disp := s.apply(src, ev, latestBefore, h, bucket)
	return disp, latestBefore
}

// Restore replays an event read back from the raw event store after a
// restart, with the latest time its source had when it was first counted.
// It rebuilds windows and the dedup set exactly as Add built them.
func (s *Set) Restore(ev *event.Event, latestBefore, nowMs int64) Disposition {
	// What restored events finalise was final before the restart, and
	// its consumers restore it themselves; FinishRestore logs the progress.
	s.restoring = true
	defer func() { s.restoring = false }()
	src := s.source(ev.Source)
	src.lastSeenMs = nowMs
	bucket := floorDiv(ev.TimeMs, s.minSizeMs) * s.minSizeMs
	h := maphash.String(s.seed, ev.ID)
	if src.ids.has(bucket, h) {
		return Duplicate
	}
	return s.apply(src, ev, latestBefore, h, bucket)
}

func (s *Set) apply(src *source, ev *event.Event, latestBefore int64, h uint64, bucket int64) Disposition {
	cutoff := int64(math.MinInt64)
	if latestBefore != math.MinInt64 {
		cutoff = latestBefore - s.horizonMs
	}
	if !src.inActive {
		src.inActive = true
		s.active = append(s.active, src)
	}
	if ev.TimeMs > src.latestMs {
		src.latestMs = ev.TimeMs
	}
	// Windows become final the moment the watermark passes them, not when
	// they are next collected: a later event of the same batch is then a
	// correction, as it would be with any other batching.
	watermark := src.latestMs - s.latenessMs
	if watermark >= src.nextEndMs {
		s.finalize(src, func(sl *slot) bool { return sl.endMs <= watermark })
	}
	s.progress(src, floorDiv(watermark, s.minSizeMs)*s.minSizeMs)
	disp := Dropped
	keys := s.keysOf(src, ev)
	for i, size := range s.sizesMs {
		start := floorDiv(ev.TimeMs, size) * size
		if start+size <= cutoff {
			continue
		}
		key := slotKey{i, start}
		sl, at := src.slot(i, start)
		if sl == nil {
			// Sized for as many aggregates as the source's last slot of this
			// size held (or this event's): a source's windows hold the same
			// keys, and growing from empty would leave a third of the
			// slots' memory unused.
			n := max(len(keys), src.aggHint(i))
			sl = &slot{startMs: start, endMs: start + size, aggs: make([]agg, 0, n), ids: make([]string, 0, 2*n+5)}
			src.slots[i] = slices.Insert(src.slots[i], at, sl)
			src.pruneSlotsAt = min(src.pruneSlotsAt, sl.endMs)
			if sl.endMs <= watermark {
				sl.final = true // behind the watermark already: final at once
			} else {
				s.openWindows++
				src.open = append(src.open, keyedSlot{key, sl})
				s.open[src] = struct{}{}
				src.nextEndMs = min(src.nextEndMs, sl.endMs)
			}
		}
		if sl.final {
			disp = Corrected
			sl.thaw()
		} else if disp == Dropped {
			disp = Accepted
		}
		src.markDirty(key, sl)
		var ref uint32
		ref, s.remap = sl.idRef(ev.ID, s.remap)
		for m, k := range keys {
			v := 1.0 // the event count's
			if m < len(ev.MetricValues) {
				v = ev.MetricValues[m]
			}
			sl.add(sl.agg(k), v, ev.TimeMs, ev.ID, ref)
		}
		if sl.final && i == 0 && !s.restoring {
			// A correction: the panes it changed, as they are now.
			for _, k := range keys {
				s.logRow(sl.agg(k), sl, src.name)
			}
		}
	}
	if disp != Dropped {
		if src.ids.add(bucket, h) {
			src.pruneIDsAt = min(src.pruneIDsAt, bucket+s.minSizeMs)
		}
		s.changed(src)
	}
	return disp
}

// finalize makes the open slots of src that due selects final, logging
// the smallest ones in time order: a consumer that sees a pane final may
// take every earlier one of the source as final too.
func (s *Set) finalize(src *source, due func(*slot) bool) {
	next := int64(math.MaxInt64)
	closing := s.closing[:0]
	open := src.open[:0]
	for _, o := range src.open {
		key, sl := o.key, o.sl
		if !due(sl) {
			next = min(next, sl.endMs)
			open = append(open, o)
			continue
		}
		sl.final = true
		src.markDirty(key, sl) // the final row is written even if nothing changed since the early one
		s.openWindows--
		if key.sizeIdx == 0 && !s.restoring {
			closing = append(closing, sl)
		}
	}
	clear(src.open[len(open):])
	src.open = open
	src.nextEndMs = next
	slices.SortFunc(closing, func(a, b *slot) int { return cmp.Compare(a.startMs, b.startMs) })
	for _, sl := range closing {
		s.logSlot(sl, src.name)
	}
	clear(closing)
	s.closing = closing[:0]
}

// progress records that src's panes ending at or before doneMs are final.
func (s *Set) progress(src *source, doneMs int64) {
	if doneMs == src.doneMs {
		return
	}
	if doneMs < src.doneMs && src.doneMs != math.MaxInt64 {
		return // the watermark never moves back, but an idle source's progress does
	}
	src.doneMs = doneMs
	if !s.restoring {
		s.updates = append(s.updates, Update{Row: Row{Source: src.name}, Progress: true, DoneMs: doneMs})
	}
}

// logSlot logs every pane of a slot that just became final, in a stable
// order (the order its aggregates first appeared).
func (s *Set) logSlot(sl *slot, sourceName string) {
	for i := range sl.aggs {
		s.logRow(&sl.aggs[i], sl, sourceName)
	}
}

func (s *Set) logRow(a *agg, sl *slot, sourceName string) {
	k := s.keys.keys[a.key]
	s.updates = append(s.updates, Update{Row: Row{
		StartMs: sl.startMs, SizeMs: s.minSizeMs,
		Kind: k.kind, Type: k.typ, Metric: k.metric, Area: k.area, Source: sourceName,
		Count: a.count, Sum: a.sum, Min: a.min, Max: a.max, First: a.first, Last: a.last, Final: true,
	}})
}

// HasUpdates reports whether the log holds updates not yet taken.
func (s *Set) HasUpdates() bool { return len(s.updates) > 0 }

// TakeUpdates appends the logged updates to dst, oldest first, and empties
// the log.
func (s *Set) TakeUpdates(dst []Update) []Update {
	dst = append(dst, s.updates...)
	clear(s.updates)
	s.updates = s.updates[:0]
	return dst
}

// Collect finalises the windows of sources gone idle (the watermark
// finalises the others as events arrive), forgets windows that left the
// correction horizon, and returns the rows to write: every changed final
// window, and when early is set every changed open window too. Rows are
// appended to dst.
func (s *Set) Collect(dst []Row, nowMs int64, early bool) []Row {
	if early {
		return s.CollectShard(dst, nowMs, 0, 1)
	}
	return s.CollectShard(dst, nowMs, 0, 0)
}

// CollectShard is Collect with the early rows of one shard of the
// sources: those whose number (in the order the Set first saw them) is
// shard modulo shards; shards 0 writes no early rows. A caller that
// collects every shard in turn writes each open window as often as one
// early Collect would, in batches a fraction of the size: a city's
// thousands of sources otherwise all write their open windows in one.
func (s *Set) CollectShard(dst []Row, nowMs int64, shard, shards int) []Row {
	idle := s.idle[:0]
	active := s.active[:0]
	for _, src := range s.active {
		if nowMs-src.lastSeenMs >= s.idleMs {
			src.inActive = false
			idle = append(idle, src)
		} else {
			active = append(active, src)
		}
	}
	clear(s.active[len(active):])
	s.active = active
	// By name, so that the log's order does not depend on the map's.
	slices.SortFunc(idle, func(a, b *source) int { return cmp.Compare(a.name, b.name) })
	for _, src := range idle {
		// Silent for the idle timeout: nothing more is expected of its
		// open windows, and it holds up no one waiting for its progress.
		s.finalize(src, func(*slot) bool { return true })
		s.progress(src, math.MaxInt64)
		s.changed(src) // its final rows are to be written
	}
	clear(idle)
	s.idle = idle[:0]
	// Only a source that changed has final rows to write or windows to
	// forget: events mark theirs dirty, and so does going idle.
	for _, src := range s.dirty {
		src.inDirty = false
		dst = s.collectSource(dst, src, false)
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	if shards > 0 {
		for src := range s.open {
			if src.seq%shards == shard {
				dst = s.collectSource(dst, src, true)
			}
		}
	}
	s.compactKeys() // the rows above carry strings, not key indices
	return dst
}

func (s *Set) collectSource(dst []Row, src *source, early bool) []Row {
	// The dirty slots to write; those still open and not written now stay
	// marked. A slot FinishRestore dropped is no longer dirty.
	keep := src.dirtySlots[:0]
	for _, d := range src.dirtySlots {
		sl := d.sl
		if !sl.dirty {
			continue // dropped by FinishRestore
		}
		if sl.final || early {
			dst = s.rows(dst, sl, d.key, src.name)
			sl.dirty = false
			if sl.final {
				s.pack, s.remap = sl.freeze(s.pack, s.remap)
			}
			continue
		}
		keep = append(keep, d)
	}
	clear(src.dirtySlots[len(keep):])
	src.dirtySlots = keep
	// Windows and dedup buckets that left the correction horizon, scanned
	// for only once the oldest of them has.
	horizon := src.latestMs - s.horizonMs
	if src.pruneSlotsAt <= horizon {
		next := int64(math.MaxInt64)
		for i, l := range src.slots {
			l = slices.DeleteFunc(l, func(sl *slot) bool { return sl.final && !sl.dirty && sl.endMs <= horizon })
			if len(l) > 0 {
				next = min(next, l[0].endMs) // the earliest start has the earliest end
			}
			src.slots[i] = l
		}
		src.pruneSlotsAt = next
	}
	if src.pruneIDsAt <= horizon {
		src.ids.pruneBefore(horizon, s.minSizeMs)
		src.pruneIDsAt = math.MaxInt64
		if end, ok := src.ids.oldestEnd(s.minSizeMs); ok {
			src.pruneIDsAt = end
		}
	}
	if len(src.open) > 0 {
		s.open[src] = struct{}{}
	} else {
		delete(s.open, src)
	}
	return dst
}

func (s *Set) rows(dst []Row, sl *slot, key slotKey, sourceName string) []Row {
	for i := range sl.aggs {
		a := &sl.aggs[i]
		k := s.keys.keys[a.key]
		dst = append(dst, Row{
			StartMs: key.startMs, SizeMs: s.sizesMs[key.sizeIdx],
			Kind: k.kind, Type: k.typ, Metric: k.metric, Area: k.area, Source: sourceName,
			Count: a.count, Sum: a.sum, Min: a.min, Max: a.max, First: a.first, Last: a.last,
			Final: sl.final,
		})
	}
	return dst
}

// FinishRestore forgets windows that Restore rebuilt but that lie beyond
// their source's correction horizon: the restore query reads only back to
// the horizon, so those may be partial and must never be written. It then
// logs the restored state for the alert engine's RestoreWindows: every
// smallest pane the Set holds (final or open, as the row), and each
// source's progress, sources by name, panes in time order.
func (s *Set) FinishRestore() {
	names := make([]string, 0, len(s.sources))
	for name := range s.sources {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		src := s.sources[name]
		horizon := src.latestMs - s.horizonMs
		next := int64(math.MaxInt64)
		for i, l := range src.slots {
			src.slots[i] = slices.DeleteFunc(l, func(sl *slot) bool {
				if sl.endMs > horizon {
					return false
				}
				if !sl.final {
					s.openWindows--
				}
				sl.dirty = false // never written (see collectSource)
				return true
			})
			for _, sl := range src.slots[i] {
				if !sl.final {
					next = min(next, sl.endMs)
				}
			}
		}
		src.nextEndMs = next
		src.open = slices.DeleteFunc(src.open, func(o keyedSlot) bool { return o.sl.endMs <= horizon })
		for _, sl := range src.slots[0] { // the smallest panes, in time order
			sl.thaw() // restored slots are written again, and frozen then
			for i := range sl.aggs {
				s.logRow(&sl.aggs[i], sl, src.name)
				s.updates[len(s.updates)-1].Row.Final = sl.final
			}
		}
		if src.doneMs != math.MinInt64 {
			s.updates = append(s.updates, Update{Row: Row{Source: src.name}, Progress: true, DoneMs: src.doneMs})
		}
	}
}

// RestoredAfter is the end after which the Set holds every smallest pane
// of a source exactly, once restored: older panes are only in the store.
// It is math.MaxInt64 for a source the Set does not know.
func (s *Set) RestoredAfter(source string) int64 {
	src, ok := s.sources[source]
	if !ok {
		return math.MaxInt64
	}
	return src.latestMs - s.horizonMs
}

// RestoreFromMs is the earliest event time Restore needs for a source whose
// latest event time is latestMs: every window that can still change.
func (s *Set) RestoreFromMs(latestMs int64) int64 {
	return latestMs - s.horizonMs - s.sizesMs[len(s.sizesMs)-1]
}

// Stats describes the state held, for metrics and logs.
type Stats struct {
	Sources, OpenWindows int
}

// Stats returns the current size of the state.
func (s *Set) Stats() Stats {
	return Stats{Sources: len(s.sources), OpenWindows: s.openWindows}
}
