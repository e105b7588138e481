// Package lease shares a fixed set of keys (the event partitions) among
// several iocd processes through a JetStream key-value bucket whose
// entries expire: each key has at most one owner, the owner renews it, and
// when a process dies its keys expire and the others take them over.
//
// A lease is a lease on time. The owner stops on its own, by its monotonic
// clock, before anyone else can acquire the key: every side effect of the
// owner's work is preceded by a Fence check (docs/scale-out.md §3).
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ErrLost is returned by a Fence once the lease may belong to someone else.
var ErrLost = errors.New("lease lost")

// Fence reports whether the lease is still held; nil means yes.
type Fence func() error

// Work runs the owner's side of one key until ctx ends. A clean return
// after ctx ended is a graceful release: the key is deleted so that
// another process takes it at once. A return while ctx is live is a
// failure: the key is released and retried after a pause.
type Work func(ctx context.Context, key string, epoch uint64, fence Fence) error

// Config tunes a Manager.
type Config struct {
	Bucket   string        // default "iocd_leases"
	Instance string        // this process; default host-pid
	TTL      time.Duration // default 10 s
	Replicas int           // copies of the bucket in a NATS cluster
	Keys     []string      // the keys to share
	// Margin: the owner stops this long before its lease could expire on
	// the server. Default TTL/5.
	Margin time.Duration
}

// Holder is the value stored under a held key.
type Holder struct {
	Instance string    `json:"instance"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
}

// Manager acquires, renews and releases the keys.
type Manager struct {
	cfg  Config
	kv   jetstream.KeyValue
	work Work
	log  zerolog.Logger

	mu   sync.Mutex
	held map[string]*held
	// cool holds keys whose work failed: not retried before the time.
	cool map[string]time.Time
}

// held is one owned key.
type held struct {
	key      string
	rev      uint64
	deadline time.Time // monotonic; the fence fails after it
	lost     bool
	cancel   context.CancelFunc
	done     chan error // the work's result
	stopping bool       // released on purpose: delete the key when done
	mu       sync.Mutex
}

func (h *held) fence() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost || !time.Now().Before(h.deadline) {
		return fmt.Errorf("%w: %s", ErrLost, h.key)
	}
	return nil
}

// New opens (or creates) the bucket.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, work Work, log zerolog.Logger) (*Manager, error) {
	// A member without keys would panic in balance and, being counted as a
	// member, shrink everyone else's share below what covers the keys.
	if len(cfg.Keys) == 0 {
		return nil, errors.New("lease: no keys to share")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "iocd_leases"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Margin <= 0 {
		cfg.Margin = cfg.TTL / 5
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "iocd partition ownership", TTL: cfg.TTL, History: 1,
		Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", cfg.Bucket, err)
	}
	return &Manager{cfg: cfg, kv: kv, work: work, log: log.With().Str("instance", cfg.Instance).Logger(),
		held: map[string]*held{}, cool: map[string]time.Time{}}, nil
}

// Instance is this process's name in the bucket.
func (m *Manager) Instance() string { return m.cfg.Instance }

// Owned returns the keys this process holds now.
func (m *Manager) Owned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.held))
	for k := range m.held {
		out = append(out, k)
	}
	return out
}

// Run takes part in the sharing until ctx ends, then stops every work
// gracefully (renewing meanwhile), deletes its keys and returns.
func (m *Manager) Run(ctx context.Context) error {
	tick := m.cfg.TTL / 5
	t := time.NewTicker(tick)
	defer t.Stop()
	m.heartbeat()
	first := true
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-t.C:
		}
		m.heartbeat()
		m.renew()
		m.reap()
		// One tick after joining, so that processes started together see
		// each other before taking shares.
		if !first {
			m.balance()
		}
		first = false
	}
	return m.shutdown()
}

func (m *Manager) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.cfg.TTL/5)
}

func (m *Manager) value() []byte {
	host, _ := os.Hostname()
	b, _ := json.Marshal(Holder{Instance: m.cfg.Instance, Host: host, PID: os.Getpid(), Since: time.Now().UTC()})
	return b
}

// heartbeat says this process is alive: the member count sets each
// process's fair share.
func (m *Manager) heartbeat() {
	ctx, cancel := m.op()
	defer cancel()
	if _, err := m.kv.Put(ctx, "member."+m.cfg.Instance, m.value()); err != nil {
		m.log.Warn().Err(err).Msg("lease: heartbeat failed")
	}
}

// renew extends every held lease; a lease whose renewal is refused, or
// whose deadline passed, is lost and its work is cancelled at once.
func (m *Manager) renew() {
	m.mu.Lock()
	list := make([]*held, 0, len(m.held))
	for _, h := range m.held {
		list = append(list, h)
	}
	m.mu.Unlock()
	for _, h := range list {
		h.mu.Lock()
		lost, rev, deadline := h.lost, h.rev, h.deadline
		h.mu.Unlock()
		if lost {
			continue
		}
		// Past the deadline the fence has failed already: the lease stays
		// lost, even when a renewal would still go through, so that a work
		// never sees its fence pass again after ErrLost. Renewals are
		// retried until the deadline, not after it.
		sent := time.Now()
		var newRev uint64
		var err error
		if sent.Before(deadline) {
			ctx, cancel := m.op()
			newRev, err = m.kv.Update(ctx, h.key, m.value(), rev)
			cancel()
		}
		h.mu.Lock()
		switch {
		case !time.Now().Before(h.deadline):
			h.lost = true
		case err == nil:
			h.rev, h.deadline = newRev, sent.Add(m.cfg.TTL-m.cfg.Margin)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists),
			errors.Is(err, jetstream.ErrKeyNotFound):
			h.lost = true
		default:
			m.log.Warn().Err(err).Str("key", h.key).Msg("lease: renewal failed; retrying until the deadline")
		}
		nowLost := h.lost
		h.mu.Unlock()
		if nowLost {
			m.log.Error().Err(err).Str("key", h.key).Uint64("revision", rev).Msg("lease lost: stopping its work without writing or acking")
			h.cancel()
		}
	}
}

// reap forgets works that ended: a released key is deleted, a failed one
// cools down before it is taken again.
func (m *Manager) reap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, h := range m.held {
		select {
		case err := <-h.done:
			delete(m.held, k)
			h.mu.Lock()
			lost, rev := h.lost, h.rev
			h.mu.Unlock()
			switch {
			case lost:
			case h.stopping:
				m.release(k, rev)
			default:
				m.log.Error().Err(err).Str("key", k).Msg("lease: work failed; releasing the key")
				m.release(k, rev)
				m.cool[k] = time.Now().Add(2 * m.cfg.TTL)
			}
		default:
		}
	}
}

func (m *Manager) release(key string, rev uint64) {
	ctx, cancel := m.op()
	defer cancel()
	if err := m.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		m.log.Warn().Err(err).Str("key", key).Msg("lease: release failed; it expires instead")
		return
	}
	m.log.Info().Str("key", key).Uint64("revision", rev).Msg("lease released")
}

// balance takes free keys up to the fair share and gives back one above it.
func (m *Manager) balance() {
	members, err := m.members()
	if err != nil {
		m.log.Warn().Err(err).Msg("lease: cannot count members")
		return
	}
	share := (len(m.cfg.Keys) + members - 1) / max(members, 1)
	m.mu.Lock()
	active := 0
	var victim *held
	for _, h := range m.held {
		if !h.stopping {
			active++
			if victim == nil || h.key > victim.key {
				victim = h
			}
		}
	}
	m.mu.Unlock()
	if active > share && victim != nil {
		m.log.Info().Str("key", victim.key).Int("held", active).Int("share", share).Int("members", members).
			Msg("lease: above the fair share; handing a key over")
		m.mu.Lock()
		victim.stopping = true
		m.mu.Unlock()
		victim.cancel()
		return
	}
	// Start from a random key so that processes joining together do not
	// all race for the same ones.
	keys := m.cfg.Keys
	off := rand.IntN(len(keys))
	for i := range keys {
		if active >= share {
			return
		}
		key := keys[(i+off)%len(keys)]
		m.mu.Lock()
		_, mine := m.held[key]
		coolUntil := m.cool[key]
		m.mu.Unlock()
		if mine || time.Now().Before(coolUntil) {
			continue
		}
		if m.acquire(key) {
			active++
		}
	}
}

// members counts the member keys. It reads a watch up to the end of its
// initial values instead of ranging over ListKeysFiltered: that channel
// closes only once the watch's consumer is deleted, by a request bound by
// nats.go's own timeout (5 s) rather than ctx, which held up the renewals
// whenever the request went unanswered; and a count cut short by ctx came
// back as if complete.
func (m *Manager) members() (int, error) {
	ctx, cancel := m.op()
	defer cancel()
	w, err := m.kv.WatchFiltered(ctx, []string{"member.>"}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return 0, err
	}
	defer func() {
		go func() { _ = w.Stop() }()
		go func() { // never leave the watch's delivery blocked on a full channel
			for range w.Updates() {
			}
		}()
	}()
	seen := map[string]bool{}
	for {
		select {
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return 0, errors.New("member watch closed")
			case e == nil: // the initial values are all in
				return max(len(seen), 1), nil
			case strings.HasPrefix(e.Key(), "member."):
				seen[e.Key()] = true
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("counting members: %w", ctx.Err())
		}
	}
}

// acquire creates the key; on success the work starts with a fence
// bounded by the lease's deadline.
func (m *Manager) acquire(key string) bool {
	sent := time.Now()
	ctx, cancel := m.op()
	rev, err := m.kv.Create(ctx, key, m.value())
	cancel()
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			m.log.Warn().Err(err).Str("key", key).Msg("lease: acquire failed")
		}
		return false
	}
	wctx, wcancel := context.WithCancel(context.Background())
	h := &held{key: key, rev: rev, deadline: sent.Add(m.cfg.TTL - m.cfg.Margin), cancel: wcancel, done: make(chan error, 1)}
	m.mu.Lock()
	m.held[key] = h
	m.mu.Unlock()
	m.log.Info().Str("key", key).Uint64("revision", rev).Msg("lease acquired")
	go func() { h.done <- m.work(wctx, key, rev, h.fence) }()
	return true
}

// shutdown stops every work gracefully, renewing their leases while they
// drain, and deletes the keys so that others take over at once.
func (m *Manager) shutdown() error {
	m.mu.Lock()
	for _, h := range m.held {
		h.stopping = true
		h.cancel()
	}
	m.mu.Unlock()
	t := time.NewTicker(m.cfg.TTL / 5)
	defer t.Stop()
	for {
		m.reap()
		m.mu.Lock()
		left := len(m.held)
		m.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-t.C:
			m.renew()
		case <-time.After(20 * time.Millisecond):
		}
	}
	ctx, cancel := m.op()
	defer cancel()
	if err := m.kv.Delete(ctx, "member."+m.cfg.Instance); err != nil {
		m.log.Warn().Err(err).Msg("lease: leaving the member list failed; it expires instead")
	}
	return nil
}
