package silence

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/subject"
)

// Errors of the Store. A validation error wraps ErrInvalid (the HTTP layer
// answers 400 with its text); Expire of an id no replica knows is
// ErrNotFound, of one that already ended ErrExpired.
var (
	ErrInvalid  = errors.New("invalid silence")
	ErrNotFound = errors.New("silence not found")
	ErrExpired  = errors.New("silence already expired")
)

// Actions passed to Config.OnChange; they are alert_actions' action names.
const (
	ActionSilence   = "silence"
	ActionUnsilence = "unsilence"
)

const (
	defaultRetain = 7 * 24 * time.Hour
	// loadTimeout bounds the wait for the bucket's initial values, which a
	// context without deadline would not.
	loadTimeout  = 30 * time.Second
	purgeEvery   = time.Hour
	purgeTimeout = 30 * time.Second
	maxRetryWait = 30 * time.Second
)

// Config tunes a Store.
type Config struct {
	// Replicas of the bucket's stream; 0 means 1.
	Replicas int
	// Now is the clock of states and timestamps; nil means time.Now.
	Now func() time.Time
	// Retain is how long an expired silence is still listed and kept in
	// the bucket; 0 means 7 days, the "last 7 days of expired" of §8.
	Retain time.Duration
	// OnChange, if set, is called after each Create ("silence") and Expire
	// ("unsilence") is stored, on the caller's goroutine, so that the
	// caller writes its audit row. It is not called for changes another
	// replica made.
	OnChange func(action string, s Silence, by Actor)
}

// entry is a silence as the bucket last gave it. Entries are never
// changed once made: a new revision is a new entry.
type entry struct {
	sil Silence
	rev uint64
}

// snapshot is the set as readers see it, rebuilt on each change so that
// the hot path (SilencedBy) takes no lock.
type snapshot struct {
	byID map[string]*entry
	live []*entry // not expired when the snapshot was made, by id
	all  []*entry // by id
}

// Store is the set of silences shared by every replica through the KV
// bucket subject.SilencesBucket. It is safe for concurrent use.
type Store struct {
	kv      jetstream.KeyValue
	cfg     Config
	log     zerolog.Logger
	changes chan struct{}
	snap    atomic.Pointer[snapshot]

	mu     sync.Mutex // guards set, timer and closed
	set    map[string]*entry
	timer  *time.Timer // fires at the next StartsAt or EndsAt
	closed bool
}

// Open creates or binds the bucket, loads every silence and keeps the set
// current with a watch until ctx ends; ctx is the life of the Store, not
// only of the call. Open returns once the initial values are loaded.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log zerolog.Logger) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retain <= 0 {
		cfg.Retain = defaultRetain
	}
	// No TTL on the bucket: a silence's life is its EndsAt plus Retain,
	// which Purge applies; history 1 because only the last write counts.
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: subject.SilencesBucket, Description: "iocd silences (CONTRACT.md §8)", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("silence: bucket %s: %w", subject.SilencesBucket, err)
	}
	s := &Store{kv: kv, cfg: cfg, log: log, changes: make(chan struct{}, 1), set: map[string]*entry{}}
	s.rebuildLocked()
	w, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	go s.run(ctx, w)
	return s, nil
}

// Changes signals (coalescing, buffered 1) whenever the set changes or a
// silence starts or ends by time.
func (s *Store) Changes() <-chan struct{} { return s.changes }

// Create validates sil, gives it a new id and stores it as created by by.
// The set has it at once, before the watch echoes it. The id, CreatedBy
// and UpdatedAt of sil are ignored.
func (s *Store) Create(ctx context.Context, sil Silence, by Actor) (Silence, error) {
	now := s.cfg.Now()
	sil.Matchers = slices.Clone(sil.Matchers) // stored: not the caller's to change
	sil.compiled = nil
	if err := sil.Validate(now); err != nil {
		return Silence{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id, err := newID()
	if err != nil {
		return Silence{}, err
	}
	// UTC without a monotonic reading: what every replica decodes.
	sil.ID, sil.CreatedBy, sil.CreatedRole, sil.UpdatedAt, sil.CreatedAt, sil.Status = id, by.Name, by.Role, now.UTC(), now.UTC(), Status{}
	sil.ExpiredBy, sil.ExpiredRole = "", ""
	sil.StartsAt, sil.EndsAt = sil.StartsAt.UTC(), sil.EndsAt.UTC()
	data, err := json.Marshal(&sil)
	if err != nil {
		return Silence{}, fmt.Errorf("silence: encode: %w", err)
	}
	rev, err := s.kv.Create(ctx, id, data)
	if err != nil {
		return Silence{}, fmt.Errorf("silence: store %s: %w", id, err)
	}
	s.put(sil, rev)
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(ActionSilence, s.out(sil, now), by)
	}
	return s.out(sil, now), nil
}

// Expire ends the silence id now. It reads the bucket rather than the set,
// so that a silence another replica just made can be expired here, and
// writes with the revision it read, so that of two replicas expiring at
// once one gets ErrExpired.
func (s *Store) Expire(ctx context.Context, id string, by Actor) (Silence, error) {
	if !validID(id) {
		return Silence{}, ErrNotFound
	}
	for attempt := 1; ; attempt++ {
		e, err := s.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Silence{}, ErrNotFound
		}
		if err != nil {
			return Silence{}, fmt.Errorf("silence: read %s: %w", id, err)
		}
		sil, err := decode(id, e.Value())
		if err != nil {
			return Silence{}, err
		}
		now := s.cfg.Now()
		if sil.State(now) == StateExpired {
			return Silence{}, ErrExpired
		}
		t := now.UTC()
		if t.Before(sil.StartsAt) {
			sil.StartsAt = t // a pending one never starts: it begins and ends now, as in Alertmanager
		}
		sil.EndsAt, sil.UpdatedAt, sil.ExpiredBy, sil.ExpiredRole = t, t, by.Name, by.Role
		data, err := json.Marshal(&sil)
		if err != nil {
			return Silence{}, fmt.Errorf("silence: encode: %w", err)
		}
		rev, err := s.kv.Update(ctx, id, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 3 {
			continue // changed meanwhile: read it again
		}
		if err != nil {
			return Silence{}, fmt.Errorf("silence: store %s: %w", id, err)
		}
		s.put(sil, rev)
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(ActionUnsilence, s.out(sil, now), by)
		}
		return s.out(sil, now), nil
	}
}

// List returns the active silences by EndsAt, then the pending ones by
// StartsAt, then those expired within Retain, latest ended first.
func (s *Store) List() []Silence {
	now := s.cfg.Now()
	all := s.snap.Load().all
	out := make([]Silence, 0, len(all))
	for _, e := range all {
		if e.sil.State(now) == StateExpired && now.Sub(e.sil.EndsAt) > s.cfg.Retain {
			continue
		}
		out = append(out, s.out(e.sil, now))
	}
	slices.SortStableFunc(out, func(a, b Silence) int {
		if c := cmp.Compare(rank(a.Status.State), rank(b.Status.State)); c != 0 {
			return c
		}
		switch a.Status.State {
		case StateActive:
			return a.EndsAt.Compare(b.EndsAt)
		case StatePending:
			return a.StartsAt.Compare(b.StartsAt)
		default:
			return b.EndsAt.Compare(a.EndsAt)
		}
	}) // stable: ties stay by id
	return out
}

// rank orders the states in List.
func rank(state string) int {
	switch state {
	case StateActive:
		return 0
	case StatePending:
		return 1
	default:
		return 2
	}
}

// Get returns the silence id, whatever its state, while the set holds it.
func (s *Store) Get(id string) (Silence, bool) {
	e, ok := s.snap.Load().byID[id]
	if !ok {
		return Silence{}, false
	}
	return s.out(e.sil, s.cfg.Now()), true
}

// SilencedBy returns the ids, sorted, of the silences active now that
// match f; nil when none. It takes no lock and allocates only for a match.
func (s *Store) SilencedBy(f Fields) []string {
	now := s.cfg.Now()
	var ids []string
	for _, e := range s.snap.Load().live {
		if e.sil.State(now) == StateActive && e.sil.Matches(f) {
			ids = append(ids, e.sil.ID)
		}
	}
	return ids
}

// Purge deletes from the bucket the silences expired longer than Retain
// ago, and the delete markers of earlier purges. The set loses them when
// the watch brings the purge. A record changed meanwhile is left alone.
func (s *Store) Purge(ctx context.Context) error {
	now := s.cfg.Now()
	var errs []error
	n := 0
	for _, e := range s.snap.Load().all {
		if e.sil.State(now) != StateExpired || now.Sub(e.sil.EndsAt) <= s.cfg.Retain {
			continue
		}
		err := s.kv.Purge(ctx, e.sil.ID, jetstream.LastRevision(e.rev))
		switch {
		case err == nil:
			n++
		case !errors.Is(err, jetstream.ErrKeyRevisionMismatch): // another replica was first
			errs = append(errs, fmt.Errorf("purge %s: %w", e.sil.ID, err))
		}
	}
	if n > 0 {
		s.log.Info().Int("silences", n).Msg("silence: purged expired silences")
	}
	if err := s.kv.PurgeDeletes(ctx); err != nil {
		errs = append(errs, fmt.Errorf("purge delete markers: %w", err))
	}
	return errors.Join(errs...)
}

// out is a silence as handed out: its status at now, and matchers the
// caller may change without touching the set's.
func (s *Store) out(sil Silence, now time.Time) Silence {
	sil.Matchers = slices.Clone(sil.Matchers)
	sil.Status = Status{State: sil.State(now)}
	return sil
}

// decode reads a record of the bucket and compiles its matchers. It does
// not Validate: a stored silence may have ended, and rules of validation
// may have changed since it was made.
func decode(key string, data []byte) (Silence, error) {
	var sil Silence
	if err := json.Unmarshal(data, &sil); err != nil {
		return Silence{}, fmt.Errorf("silence %s: decode: %w", key, err)
	}
	compiled, err := compileAll(sil.Matchers)
	if err != nil {
		return Silence{}, fmt.Errorf("silence %s: %w", key, err)
	}
	sil.ID, sil.Status, sil.compiled = key, Status{}, compiled
	return sil, nil
}

// newID returns a random (version 4) UUID, as Alertmanager's ids are.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("silence: id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// validID reports whether id can be a key of the bucket; anything else is
// not found rather than an error of the KV.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
