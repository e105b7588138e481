package silence

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/subject"
)

// The store tests run against an embedded JetStream server, as those of
// internal/broker do. Waits poll a condition up to a deadline: the watch
// and the timers are asynchronous.

const deadline = 10 * time.Second

// startServer runs an embedded JetStream server on dir, so that a test can
// restart it on the same storage.
func startServer(t *testing.T, dir string) *server.Server { return testenv.JetStream(t, dir) }

// connect is one replica's connection.
func connect(t *testing.T, srv *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// open opens a Store that lives until the returned cancel or the test's end.
func open(t *testing.T, js jetstream.JetStream, cfg Config) (*Store, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := Open(ctx, js, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s, cancel
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// eventually fails the test unless cond holds before the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func drain(s *Store) {
	select {
	case <-s.Changes():
	default:
	}
}

func waitChange(t *testing.T, s *Store, what string) {
	t.Helper()
	select {
	case <-s.Changes():
	case <-time.After(deadline):
		t.Fatalf("after %s: no change signalled: %s", deadline, what)
	}
}

var phuBai = fields{"kind": "aq", "area": "hue", "source": "aq-phu-bai-1"}

func stateOf(s *Store, id string) string {
	sil, ok := s.Get(id)
	if !ok {
		return "absent"
	}
	return sil.Status.State
}

// auditLog records OnChange calls.
type auditLog struct {
	mu   sync.Mutex
	rows []string
}

func (a *auditLog) record(action string, s Silence, by Actor) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rows = append(a.rows, action+" "+s.ID+" "+s.Status.State+" by "+by.Name)
}

func (a *auditLog) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.rows)
}

func TestStoreSharedByReplicas(t *testing.T) {
	srv := startServer(t, t.TempDir())
	var audit auditLog
	a, _ := open(t, connect(t, srv), Config{OnChange: audit.record})
	b, _ := open(t, connect(t, srv), Config{})

	// Readers on the hot path while the set changes, for -race.
	var stop atomic.Bool
	var readers sync.WaitGroup
	for _, s := range []*Store{a, b} {
		readers.Go(func() {
			for !stop.Load() {
				s.SilencedBy(phuBai)
				s.List()
			}
		})
	}
	defer readers.Wait()
	defer stop.Store(true)

	ctx := testCtx(t)
	now := time.Now()
	in := Silence{Matchers: []Matcher{eq("source", "aq-phu-bai-1")}, EndsAt: now.Add(time.Hour), Comment: "bảo trì trạm",
		ID: "ignored", CreatedBy: "ignored"}
	sil, err := a.Create(ctx, in, Actor{Name: "lan"})
	if err != nil {
		t.Fatal(err)
	}
	if sil.ID == "ignored" || !validID(sil.ID) || sil.CreatedBy != "lan" || sil.Status.State != StateActive ||
		sil.StartsAt.Before(now) || sil.UpdatedAt.IsZero() {
		t.Fatalf("created %+v", sil)
	}
	// This replica sees it at once.
	if got := a.SilencedBy(phuBai); !slices.Equal(got, []string{sil.ID}) {
		t.Fatalf("SilencedBy right after Create = %v", got)
	}
	if got := a.SilencedBy(fields{"source": "aq-hue-2"}); got != nil {
		t.Fatalf("SilencedBy of another source = %v, want nil", got)
	}
	if l := a.List(); len(l) != 1 || l[0].ID != sil.ID {
		t.Fatalf("List = %+v", l)
	}
	// The other through the watch.
	eventually(t, "replica b sees the silence", func() bool { return slices.Equal(b.SilencedBy(phuBai), []string{sil.ID}) })
	if got, _ := b.Get(sil.ID); !got.StartsAt.Equal(sil.StartsAt) || got.Comment != sil.Comment || got.CreatedBy != "lan" {
		t.Fatalf("replica b has %+v, want %+v", got, sil)
	}

	// Expired on b, which did not make it.
	drain(a)
	exp, err := b.Expire(ctx, sil.ID, Actor{Name: "minh"})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Status.State != StateExpired || exp.EndsAt.After(time.Now()) {
		t.Fatalf("expired %+v", exp)
	}
	if got := b.SilencedBy(phuBai); got != nil {
		t.Fatalf("b: SilencedBy after Expire = %v", got)
	}
	eventually(t, "replica a sees the silence expired", func() bool { return stateOf(a, sil.ID) == StateExpired })
	if got := a.SilencedBy(phuBai); got != nil {
		t.Fatalf("a: SilencedBy after Expire = %v", got)
	}
	waitChange(t, a, "expired by another replica")
	if l := a.List(); len(l) != 1 || l[0].Status.State != StateExpired {
		t.Fatalf("List after Expire = %+v, want the expired silence", l)
	}

	if _, err := a.Expire(ctx, sil.ID, Actor{Name: "lan"}); !errors.Is(err, ErrExpired) {
		t.Fatalf("second Expire: %v, want ErrExpired", err)
	}
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "a.b", ""} {
		if _, err := a.Expire(ctx, id, Actor{Name: "lan"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Expire(%q): %v, want ErrNotFound", id, err)
		}
	}
	_, err = a.Create(ctx, Silence{Matchers: []Matcher{eq("foo", "x")}, EndsAt: now.Add(time.Hour), Comment: "c"}, Actor{Name: "lan"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Create of an invalid silence: %v, want ErrInvalid", err)
	}
	// OnChange saw only a's own successful writes.
	if got, want := audit.get(), []string{"silence " + sil.ID + " active by lan"}; !slices.Equal(got, want) {
		t.Fatalf("audit = %q, want %q", got, want)
	}
}

// Two replicas expiring the same silence at once: one wins.
func TestExpireRace(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a, _ := open(t, connect(t, srv), Config{})
	b, _ := open(t, connect(t, srv), Config{})
	ctx := testCtx(t)
	sil, err := a.Create(ctx, Silence{Matchers: []Matcher{eq("area", "hue")}, EndsAt: time.Now().Add(time.Hour), Comment: "c"}, Actor{Name: "lan"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Go(func() { _, errs[i] = s.Expire(ctx, sil.ID, Actor{Name: "x"}) })
	}
	wg.Wait()
	ok, expired := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrExpired):
			expired++
		default:
			t.Fatalf("Expire: %v", err)
		}
	}
	if ok != 1 || expired != 1 {
		t.Fatalf("Expire results %v, want one success and one ErrExpired", errs)
	}
}

// A pending silence becomes active when its StartsAt passes and expires
// at its EndsAt, on every replica, each signalled on Changes.
func TestStartsAndEndsByTime(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a, _ := open(t, connect(t, srv), Config{})
	b, _ := open(t, connect(t, srv), Config{})
	ctx := testCtx(t)
	start := time.Now().Add(1200 * time.Millisecond)
	sil, err := a.Create(ctx, Silence{Matchers: []Matcher{re("source", "aq-.*")}, StartsAt: start,
		EndsAt: start.Add(time.Second), Comment: "c"}, Actor{Name: "lan"})
	if err != nil {
		t.Fatal(err)
	}
	if sil.Status.State != StatePending || a.SilencedBy(phuBai) != nil {
		t.Fatalf("created %+v, SilencedBy %v: want pending and not silencing", sil, a.SilencedBy(phuBai))
	}
	eventually(t, "b sees the pending silence", func() bool { return stateOf(b, sil.ID) == StatePending })
	drain(a)
	drain(b)

	for _, s := range []*Store{a, b} {
		waitChange(t, s, "silence started")
		eventually(t, "the silence is active", func() bool { return slices.Equal(s.SilencedBy(phuBai), []string{sil.ID}) })
	}
	if time.Now().Before(start) {
		t.Fatal("active before its StartsAt")
	}
	if l := a.List(); len(l) != 1 || l[0].Status.State != StateActive {
		t.Fatalf("List = %+v", l)
	}
	for _, s := range []*Store{a, b} {
		drain(s)
	}
	for _, s := range []*Store{a, b} {
		waitChange(t, s, "silence ended")
		eventually(t, "the silence ended", func() bool { return s.SilencedBy(phuBai) == nil })
	}
	if time.Now().Before(sil.EndsAt) {
		t.Fatal("ended before its EndsAt")
	}
}

// The set survives the Store and the server: a new Store on a restarted
// server finds the same silences, in the same states.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	a, cancel := open(t, connect(t, srv), Config{})
	ctx := testCtx(t)
	now := time.Now()
	var ids []string
	for _, src := range []string{"aq-1", "aq-2", "aq-3"} {
		sil, err := a.Create(ctx, Silence{Matchers: []Matcher{eq("source", src)}, EndsAt: now.Add(time.Hour), Comment: src}, Actor{Name: "lan"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sil.ID)
	}
	pending, err := a.Create(ctx, Silence{Matchers: []Matcher{eq("area", "hue")}, StartsAt: now.Add(time.Hour),
		EndsAt: now.Add(2 * time.Hour), Comment: "later"}, Actor{Name: "lan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expire(ctx, ids[1], Actor{Name: "lan"}); err != nil {
		t.Fatal(err)
	}
	want := a.List()
	cancel()
	srv.Shutdown()
	srv.WaitForShutdown()

	srv = startServer(t, dir)
	b, _ := open(t, connect(t, srv), Config{})
	got := b.List()
	if len(got) != 4 {
		t.Fatalf("reopened List has %d silences, want 4: %+v", len(got), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Status != w.Status || !g.EndsAt.Equal(w.EndsAt) || !g.StartsAt.Equal(w.StartsAt) ||
			g.Comment != w.Comment || !slices.Equal(g.Matchers, w.Matchers) {
			t.Fatalf("reopened List[%d] = %+v, want %+v", i, g, w)
		}
	}
	// Active first (by EndsAt), then pending, then expired.
	if got[3].ID != ids[1] || got[2].ID != pending.ID {
		t.Fatalf("List order %+v", got)
	}
	if s := b.SilencedBy(fields{"source": "aq-3"}); !slices.Equal(s, []string{ids[2]}) {
		t.Fatalf("reopened SilencedBy = %v", s)
	}
	if s := b.SilencedBy(fields{"source": "aq-2"}); s != nil {
		t.Fatalf("reopened SilencedBy of the expired one = %v", s)
	}
}

// Purge deletes what expired longer than Retain ago, on every replica.
func TestPurge(t *testing.T) {
	srv := startServer(t, t.TempDir())
	js := connect(t, srv)
	const retain = 50 * time.Millisecond
	a, _ := open(t, js, Config{Retain: retain})
	b, _ := open(t, connect(t, srv), Config{Retain: retain})
	ctx := testCtx(t)
	var ids []string
	for range 2 {
		sil, err := a.Create(ctx, Silence{Matchers: []Matcher{eq("area", "hue")}, EndsAt: time.Now().Add(time.Hour), Comment: "c"}, Actor{Name: "lan"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sil.ID)
	}
	if _, err := a.Expire(ctx, ids[0], Actor{Name: "lan"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "expired beyond Retain, no longer listed", func() bool {
		l := a.List()
		return len(l) == 1 && l[0].ID == ids[1]
	})
	if err := a.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, subject.SilencesBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, ids[0]); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("purged key: %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Get(ctx, ids[1]); err != nil {
		t.Fatalf("active key: %v", err)
	}
	for _, s := range []*Store{a, b} {
		eventually(t, "the purged silence leaves the set", func() bool { _, ok := s.Get(ids[0]); return !ok })
	}
	if _, err := a.Expire(ctx, ids[0], Actor{Name: "lan"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Expire of a purged silence: %v, want ErrNotFound", err)
	}
	if err := b.Purge(ctx); err != nil { // nothing left to do
		t.Fatal(err)
	}
}
