package silence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/subject"
)

// The in-memory set: how the watch and this replica's own writes keep it
// current, and the timer that marks silences starting and ending.

// load starts a watch of the whole bucket and replaces the set with its
// initial values. The watch ends with ctx.
func (s *Store) load(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("silence: watch: %w", err)
	}
	set := map[string]*entry{}
	deadline := time.NewTimer(loadTimeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("silence: watch closed while loading")
			}
			if e == nil { // every initial value is in
				s.mu.Lock()
				s.set = set
				s.changedLocked()
				s.mu.Unlock()
				return w, nil
			}
			if e.Operation() == jetstream.KeyValuePut {
				if sil, err := decode(e.Key(), e.Value()); err != nil {
					s.log.Warn().Err(err).Str("silence", e.Key()).Msg("silence: unreadable record skipped")
				} else {
					set[e.Key()] = &entry{sil: sil, rev: e.Revision()}
				}
			}
		case <-deadline.C:
			stopWatch(w)
			return nil, fmt.Errorf("silence: loading %s: no end of initial values after %s", subject.SilencesBucket, loadTimeout)
		case <-ctx.Done():
			stopWatch(w)
			return nil, fmt.Errorf("silence: loading: %w", ctx.Err())
		}
	}
}

// stopWatch stops w and drains it, so that nats.go's delivery never stays
// blocked on a full channel.
func stopWatch(w jetstream.KeyWatcher) {
	_ = w.Stop()
	go func() {
		for range w.Updates() {
		}
	}()
}

// run applies the watch's updates and purges hourly until ctx ends. A
// watch that closes while ctx lives (the connection closed) is started
// again, and reloads the whole set.
func (s *Store) run(ctx context.Context, w jetstream.KeyWatcher) {
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	defer func() {
		s.mu.Lock()
		s.closed = true
		if s.timer != nil {
			s.timer.Stop()
		}
		s.mu.Unlock()
	}()
	wait := time.Second
	for {
		if w == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			var err error
			if w, err = s.load(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				wait = min(2*wait, maxRetryWait)
				s.log.Warn().Err(err).Dur("retry_in", wait).Msg("silence: watch not restarted")
				continue
			}
			wait = time.Second // load signalled Changes: the set may differ
		}
		select {
		case <-ctx.Done():
			stopWatch(w)
			return
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				if ctx.Err() == nil {
					s.log.Warn().Msg("silence: watch closed, restarting it")
				}
				w = nil
			case e != nil:
				s.apply(e)
			}
		case <-purge.C:
			pctx, cancel := context.WithTimeout(ctx, purgeTimeout)
			if err := s.Purge(pctx); err != nil {
				s.log.Warn().Err(err).Msg("silence: purge")
			}
			cancel()
		}
	}
}

// apply takes one update of the watch. Our own writes are already in the
// set (Create and Expire put them at once): the revision check drops
// their echo, and any update older than what the set holds.
func (s *Store) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.set[e.Key()]
	if cur != nil && cur.rev >= e.Revision() {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		sil, err := decode(e.Key(), e.Value())
		if err != nil {
			s.log.Warn().Err(err).Str("silence", e.Key()).Msg("silence: unreadable record skipped")
			return
		}
		s.set[e.Key()] = &entry{sil: sil, rev: e.Revision()}
	default: // deleted or purged
		if cur == nil {
			return
		}
		delete(s.set, e.Key())
	}
	s.changedLocked()
}

// put records a silence this replica stored with revision rev.
func (s *Store) put(sil Silence, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.set[sil.ID]; cur != nil && cur.rev >= rev {
		return // the watch was faster
	}
	s.set[sil.ID] = &entry{sil: sil, rev: rev}
	s.changedLocked()
}

// changedLocked publishes the set to readers, sets the timer for the next
// boundary and signals Changes.
func (s *Store) changedLocked() {
	s.rebuildLocked()
	s.scheduleLocked()
	s.notify()
}

func (s *Store) rebuildLocked() {
	now := s.cfg.Now()
	snap := &snapshot{byID: make(map[string]*entry, len(s.set)), all: make([]*entry, 0, len(s.set))}
	for id, e := range s.set {
		snap.byID[id] = e
		snap.all = append(snap.all, e)
	}
	slices.SortFunc(snap.all, func(a, b *entry) int { return cmp.Compare(a.sil.ID, b.sil.ID) })
	for _, e := range snap.all {
		if e.sil.State(now) != StateExpired {
			snap.live = append(snap.live, e)
		}
	}
	s.snap.Store(snap)
}

// scheduleLocked arms the timer for the next StartsAt or EndsAt after now:
// a silence that starts or ends by time changes what SilencedBy answers,
// and the HTTP layer must hear of it as of any other change.
func (s *Store) scheduleLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.closed {
		return
	}
	now := s.cfg.Now()
	var next time.Time
	for _, e := range s.set {
		for _, t := range [2]time.Time{e.sil.StartsAt, e.sil.EndsAt} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	if next.IsZero() {
		return
	}
	s.timer = time.AfterFunc(next.Sub(now), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			s.rebuildLocked() // drop what just expired from the hot path
			s.notify()
			s.scheduleLocked()
		}
	})
}

// notify signals Changes without blocking; signals not yet read coalesce.
func (s *Store) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}
