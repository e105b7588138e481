package alert

import (
	"slices"
	"strings"
	"sync"
)

// Board is the live set of firing alerts, fed with every published
// transition, plus the subscribers that want those transitions as they
// happen (the HTTP API's SSE clients). It is safe for concurrent use.
//
// Alerts are stored and handed out as shallow copies: Labels and EndsAt
// are shared with the caller of Apply, which must not modify them after.
type Board struct {
	mu     sync.Mutex
	firing map[string]Alert // by fingerprint
	ended  map[string]int   // seq of the resolving transition, by alert id
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch chan Alert
}

// NewBoard returns an empty board.
func NewBoard() *Board {
	return &Board{firing: map[string]Alert{}, ended: map[string]int{}, subs: map[*subscriber]struct{}{}}
}

// maxEnded bounds the memory of resolved episodes.
const maxEnded = 10_000

// Apply records a published transition and passes it to the subscribers.
// It never waits for a subscriber: the pipeline's writer calls it once
// JetStream has stored the transition, before the batch's ack, so one
// whose buffer is full is dropped (its channel closed) and has to
// subscribe again, getting a fresh snapshot.
func (b *Board) Apply(a Alert) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A transition retried after a NATS leader change can be confirmed
	// after a later one of the same alert: never let it take the view back.
	if cur, ok := b.firing[a.Fingerprint]; ok && cur.ID == a.ID && a.Seq < cur.Seq {
		return
	}
	if end, ok := b.ended[a.ID]; ok && a.Seq < end {
		return
	}
	switch a.Status {
	case StatusFiring:
		b.firing[a.Fingerprint] = a
	case StatusResolved:
		delete(b.firing, a.Fingerprint)
		if len(b.ended) >= maxEnded {
			clear(b.ended) // only recent episodes can still have stragglers
		}
		b.ended[a.ID] = a.Seq
	}
	// Sending under the lock is what makes Subscribe's snapshot and stream
	// agree: a transition is either in a subscriber's snapshot or in its
	// channel, never both, never neither.
	for s := range b.subs {
		select {
		case s.ch <- a:
		default:
			b.drop(s)
		}
	}
}

// Firing returns the firing alerts, most severe first, then oldest first.
// The slice is never nil, so it encodes as [] when nothing fires.
func (b *Board) Firing() []Alert {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snapshot()
}

// Subscribe returns the firing alerts and a channel of the transitions
// applied after them, taken under one lock so none is lost or repeated in
// between. buf is the channel's capacity (at least 1): a subscriber that
// falls that far behind is dropped, which closes the channel. cancel ends
// the subscription and may be called any number of times. After Close the
// channel is returned already closed.
func (b *Board) Subscribe(buf int) (snapshot []Alert, updates <-chan Alert, cancel func()) {
	s := &subscriber{ch: make(chan Alert, max(buf, 1))}
	b.mu.Lock()
	defer b.mu.Unlock()
	snapshot = b.snapshot()
	if b.closed {
		close(s.ch)
		return snapshot, s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	cancel = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.drop(s)
	}
	return snapshot, s.ch, cancel
}

// Close ends every subscription, so that streaming HTTP handlers return at
// shutdown. Apply keeps updating the firing set afterwards.
func (b *Board) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.drop(s)
	}
}

// drop closes a subscriber's channel once: membership in subs is the
// record of whether it is still open. The caller holds b.mu.
func (b *Board) drop(s *subscriber) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
}

// snapshot sorts the firing alerts. The caller holds b.mu.
func (b *Board) snapshot() []Alert {
	out := make([]Alert, 0, len(b.firing))
	for _, a := range b.firing {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Alert) int {
		if c := severityRank(x.Severity) - severityRank(y.Severity); c != 0 {
			return c
		}
		if c := x.StartsAt.Compare(y.StartsAt); c != 0 {
			return c
		}
		return strings.Compare(x.Fingerprint, y.Fingerprint)
	})
	return out
}

// severityRank orders severities most severe first; an unknown one sorts
// last rather than being hidden.
func severityRank(s Severity) int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	case Info:
		return 2
	}
	return 3
}
