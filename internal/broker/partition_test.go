package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/city"
	"github.com/iocstream/iocstream/test/testenv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Tests of partitioned mode (docs/scale-out.md §1–2) against a real
// embedded nats-server.

const testLegacy = "iocd" // the single-process consumer

var testLimits = StreamLimits{EventsMaxAge: time.Hour, AlertsMaxAge: time.Hour, DLQMaxAge: time.Hour,
	DuplicateWindow: time.Minute}

// startJS runs an embedded JetStream server for the test and returns a
// client on it.
func startJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := testenv.JetStream(t, t.TempDir())
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startEvents starts a server with the contract's streams, IOC_EVENTS
// partitioned into n when n > 0.
func startEvents(t *testing.T, n int) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := startJS(t)
	ctx := testCtx(t)
	if err := EnsureStreams(ctx, js, testLimits, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if err := EnsurePartitioned(ctx, js, n, testLegacy, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
	}
	return nc, js
}

func publish(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	ack, err := js.Publish(testCtx(t), subject, []byte(`{}`))
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

func storedSubject(t *testing.T, js jetstream.JetStream, seq uint64) string {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	return m.Subject
}

func streamTransform(t *testing.T, js jetstream.JetStream) *jetstream.SubjectTransformConfig {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.SubjectTransform
}

func slugs() []string {
	var out []string
	for _, a := range city.Areas() {
		out = append(out, a.Slug)
	}
	return out
}

// TestPartitionMatchesTransform compares Partition with nats-server's own
// transform code for several wildcard selections, without a server.
func TestPartitionMatchesTransform(t *testing.T) {
	kinds := []string{"camera", "feedback", "air", "x"}
	cases := []struct {
		name string
		n    int
		args string                        // wildcard indexes of partition(n, args)
		keys func(k, a, s string) []string // the tokens Partition gets
	}{
		{"n1 area", 1, "2", func(_, a, _ string) []string { return []string{a} }},
		{"n8 area", 8, "2", func(_, a, _ string) []string { return []string{a} }},
		{"n16 area", 16, "2", func(_, a, _ string) []string { return []string{a} }},
		{"n7 area", 7, "2", func(_, a, _ string) []string { return []string{a} }},
		{"n8 kind+area", 8, "1,2", func(k, a, _ string) []string { return []string{k, a} }},
		{"n8 source+kind", 8, "3,1", func(k, _, s string) []string { return []string{s, k} }},
		{"n32 all", 32, "1,2,3", func(k, a, s string) []string { return []string{k, a, s} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := server.NewSubjectTransform("ioc.events.*.*.*",
				fmt.Sprintf("{{partition(%d,%s)}}", tc.n, tc.args))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kinds {
				for _, a := range slugs() {
					subj := "ioc.events." + k + "." + a + ".cam1"
					got, err := tr.Match(subj)
					if err != nil {
						t.Fatalf("server transform of %s: %v", subj, err)
					}
					p := Partition(tc.n, tc.keys(k, a, "cam1")...)
					if p < 0 || p >= tc.n {
						t.Fatalf("Partition(%d, %v) = %d, out of range", tc.n, tc.keys(k, a, "cam1"), p)
					}
					if want := fmt.Sprint(p); got != want {
						t.Errorf("%s: server partition %s, Partition %s", subj, got, want)
					}
				}
			}
		})
	}
	for _, n := range []int{0, -1} {
		if p := Partition(n, "kim-long"); p != 0 {
			t.Errorf("Partition(%d, kim-long) = %d, want 0", n, p)
		}
	}
}

// TestPartitionKnownValues pins a few rows of the table in
// docs/scale-out.md §1.1 (N = 8).
func TestPartitionKnownValues(t *testing.T) {
	for _, tc := range []struct {
		area string
		want int
	}{
		{"vy-da", 0}, {"nam-dong", 0}, {"phong-dinh", 1}, {"phong-thai", 2}, {"a-luoi-5", 2},
		{"thanh-thuy", 3}, {"huong-an", 4}, {"kim-long", 5}, {"chan-may-lang-co", 5},
		{"thuan-hoa", 6}, {"phu-xuan", 7}, {"loc-an", 7},
	} {
		if got := Partition(8, tc.area); got != tc.want {
			t.Errorf("Partition(8, %s) = %d, want %d", tc.area, got, tc.want)
		}
	}
}

// TestPartitionedStreamStoresByArea publishes one event per area through
// the stream transform and checks each stored subject.
func TestPartitionedStreamStoresByArea(t *testing.T) {
	for _, n := range []int{1, 8, 16} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			_, js := startEvents(t, n)
			ctx := testCtx(t)
			if got, want := streamTransform(t, js), PartitionTransform(n); got == nil || *got != *want {
				t.Fatalf("stream transform %+v, want %+v", got, want)
			}
			// A second start with the same count is a no-op.
			if err := EnsurePartitioned(ctx, js, n, testLegacy, zerolog.Nop()); err != nil {
				t.Fatalf("EnsurePartitioned again with the same n: %v", err)
			}
			seen := map[int]int{}
			for _, slug := range slugs() {
				published := "ioc.events.camera." + slug + ".cam1"
				seq := publish(t, js, published)
				p := Partition(n, slug)
				seen[p]++
				want := fmt.Sprintf("ioc.part.%d.%d.camera.%s.cam1", n, p, slug)
				stored := storedSubject(t, js, seq)
				if stored != want {
					t.Errorf("%s stored as %s, want %s", published, stored, want)
				}
				if got := PublishedSubject(stored); got != published {
					t.Errorf("PublishedSubject(%s) = %s, want %s", stored, got, published)
				}
			}
			if n > 1 && len(seen) < 2 {
				t.Errorf("all %d areas fell in one partition of %d: %v", len(slugs()), n, seen)
			}
		})
	}
}

func TestEnsurePartitionedCount(t *testing.T) {
	for _, tc := range []struct {
		first, second int
		wantErr       bool
	}{
		{8, 8, false},
		{8, 16, true},
		{16, 8, true},
		{1, 8, true},
		{8, 1, true},
	} {
		t.Run(fmt.Sprintf("%d then %d", tc.first, tc.second), func(t *testing.T) {
			_, js := startEvents(t, tc.first)
			err := EnsurePartitioned(testCtx(t), js, tc.second, testLegacy, zerolog.Nop())
			if (err != nil) != tc.wantErr {
				t.Fatalf("EnsurePartitioned(%d) on a stream partitioned by %d: err = %v, want error %v",
					tc.second, tc.first, err, tc.wantErr)
			}
			// The stream keeps its first layout either way.
			if got, want := streamTransform(t, js), PartitionTransform(tc.first); got == nil || *got != *want {
				t.Errorf("stream transform %+v, want %+v", got, want)
			}
			seq := publish(t, js, "ioc.events.camera.kim-long.cam1")
			want := fmt.Sprintf("ioc.part.%d.%d.camera.kim-long.cam1", tc.first, Partition(tc.first, "kim-long"))
			if got := storedSubject(t, js, seq); got != want {
				t.Errorf("stored as %s, want %s", got, want)
			}
		})
	}
	t.Run("no stream", func(t *testing.T) {
		_, js := startJS(t)
		if err := EnsurePartitioned(testCtx(t), js, 8, testLegacy, zerolog.Nop()); err == nil {
			t.Error("EnsurePartitioned without IOC_EVENTS succeeded")
		}
	})
}

func TestPublishedSubject(t *testing.T) {
	for _, tc := range []struct{ stored, want string }{
		{"ioc.part.8.5.camera.kim-long.cam1", "ioc.events.camera.kim-long.cam1"},
		{"ioc.part.16.13.air.vy-da.s-01", "ioc.events.air.vy-da.s-01"},
		{"ioc.part.1.0.feedback.phu-xuan.app", "ioc.events.feedback.phu-xuan.app"},
		{"ioc.part.8.3.x", "ioc.events.x"},
		// Untransformed subjects are what was published.
		{"ioc.events.camera.kim-long.cam1", "ioc.events.camera.kim-long.cam1"},
		{"ioc.events.camera", "ioc.events.camera"},
		{"ioc.events.camera.kim-long", "ioc.events.camera.kim-long"},
		{"ioc.events.camera.kim-long.cam1.extra", "ioc.events.camera.kim-long.cam1.extra"},
		{"ioc.alerts.critical.flood.kim-long", "ioc.alerts.critical.flood.kim-long"},
		{"", ""},
		// Malformed partitioned subjects are returned unchanged.
		{"ioc.part", "ioc.part"},
		{"ioc.part.", "ioc.part."},
		{"ioc.part.8", "ioc.part.8"},
		{"ioc.part.8.3", "ioc.part.8.3"},
		{"ioc.partition.8.3.camera.a.b", "ioc.partition.8.3.camera.a.b"},
		{"xioc.part.8.3.camera.a.b", "xioc.part.8.3.camera.a.b"},
	} {
		if got := PublishedSubject(tc.stored); got != tc.want {
			t.Errorf("PublishedSubject(%q) = %q, want %q", tc.stored, got, tc.want)
		}
	}
}

func TestPartitionFilterValues(t *testing.T) {
	if got, want := PartitionFilters(8, 5), []string{"ioc.part.8.5.>", "ioc.events.*.*.*"}; !slices.Equal(got, want) {
		t.Errorf("PartitionFilters(8, 5) = %v, want %v", got, want)
	}
	if got, want := PartitionFilters(16, 0), []string{"ioc.part.16.0.>", "ioc.events.*.*.*"}; !slices.Equal(got, want) {
		t.Errorf("PartitionFilters(16, 0) = %v, want %v", got, want)
	}
	tr := PartitionTransform(8)
	if tr.Source != "ioc.events.*.*.*" ||
		tr.Destination != "ioc.part.8.{{partition(8,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}" {
		t.Errorf("PartitionTransform(8) = %+v", tr)
	}
}

// fetchAll reads every message a new consumer with filters has, checking
// that the count matches its pending count.
func fetchAll(t *testing.T, js jetstream.JetStream, filters []string) []string {
	t.Helper()
	ctx := testCtx(t)
	c, err := js.CreateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckNonePolicy, FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		t.Fatalf("consumer on %v: %v", filters, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if info.NumPending > 0 {
		batch, err := c.Fetch(int(info.NumPending), jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m.Subject())
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	if uint64(len(out)) != info.NumPending {
		t.Errorf("consumer on %v: %d pending, fetched %d", filters, info.NumPending, len(out))
	}
	if info, err = c.Info(ctx); err != nil {
		t.Fatal(err)
	} else if info.NumPending != 0 {
		t.Errorf("consumer on %v: %d more pending after the fetch", filters, info.NumPending)
	}
	return out
}

// TestRejectsAndPartitionFilters checks that malformed subjects stay as
// published and go to the rejects filters only, and that each partition's
// filter gets exactly its own areas.
func TestRejectsAndPartitionFilters(t *testing.T) {
	const n = 8
	_, js := startEvents(t, n)
	malformed := []string{
		"ioc.events.camera",
		"ioc.events.camera.kim-long",
		"ioc.events.camera.kim-long.cam1.extra",
		"ioc.events.camera.kim-long.cam1.extra.more",
		"ioc.events.x.vy-da.cam1.3",
	}
	wantPart := map[int][]string{}
	var mi int
	for i, slug := range slugs() {
		subj := "ioc.events.camera." + slug + ".cam1"
		publish(t, js, subj)
		p := Partition(n, slug)
		wantPart[p] = append(wantPart[p], fmt.Sprintf("ioc.part.%d.%d.camera.%s.cam1", n, p, slug))
		// Interleave the malformed ones.
		if i%7 == 0 && mi < len(malformed) {
			if got := storedSubject(t, js, publish(t, js, malformed[mi])); got != malformed[mi] {
				t.Errorf("malformed %s stored as %s", malformed[mi], got)
			}
			mi++
		}
	}
	for ; mi < len(malformed); mi++ {
		if got := storedSubject(t, js, publish(t, js, malformed[mi])); got != malformed[mi] {
			t.Errorf("malformed %s stored as %s", malformed[mi], got)
		}
	}
	// A direct publish into the partitioned space is not stored.
	pubCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := js.Publish(pubCtx, "ioc.part.8.5.camera.vy-da.cam1", []byte(`{}`)); err == nil {
		t.Error("a publish to ioc.part.8.5.… was stored")
	} else {
		t.Logf("direct publish to the partitioned space: %v", err)
	}

	if got := fetchAll(t, js, RejectsFilters); !slices.Equal(got, malformed) {
		t.Errorf("rejects consumer got %q, want %q", got, malformed)
	}
	total := 0
	for p := range n {
		got := fetchAll(t, js, PartitionFilters(n, p))
		if !slices.Equal(got, wantPart[p]) {
			t.Errorf("partition %d consumer got %q, want %q", p, got, wantPart[p])
		}
		total += len(got)
	}
	if total != len(slugs()) {
		t.Errorf("partition consumers got %d events in all, want %d", total, len(slugs()))
	}
	// The legacy filter now sees only the malformed subjects.
	if got := fetchAll(t, js, []string{"ioc.events.>"}); !slices.Equal(got, malformed) {
		t.Errorf("ioc.events.> consumer got %q, want %q", got, malformed)
	}
}

func TestCheckUnpartitioned(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int // 0: plain stream
		wantErr bool
	}{
		{"plain", 0, false},
		{"partitioned 8", 8, true},
		{"partitioned 1", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, js := startEvents(t, tc.n)
			err := CheckUnpartitioned(testCtx(t), js)
			if (err != nil) != tc.wantErr {
				t.Errorf("CheckUnpartitioned: err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	t.Run("no stream", func(t *testing.T) {
		_, js := startJS(t)
		if err := CheckUnpartitioned(testCtx(t), js); err == nil {
			t.Error("CheckUnpartitioned without IOC_EVENTS returned nil")
		}
	})
}

// fetchN fetches exactly n messages from c.
func fetchN(t *testing.T, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("fetched %d messages, want %d (err %v)", len(out), n, batch.Error())
	}
	return out
}

func msgSeq(t *testing.T, m jetstream.Msg) uint64 {
	t.Helper()
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md.Sequence.Stream
}

// waitPending waits until c reports n pending messages.
func waitPending(t *testing.T, c jetstream.Consumer, n uint64) {
	t.Helper()
	ctx := testCtx(t)
	for {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s: %d pending, want %d", info.Name, info.NumPending, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitNoPulls waits until the server has no pull request waiting on c;
// consumer info drops the requests nobody listens to any more.
func waitNoPulls(t *testing.T, c jetstream.Consumer) {
	t.Helper()
	ctx := testCtx(t)
	for {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumWaiting == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s: %d pull requests still waiting", info.Name, info.NumWaiting)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestEnsurePartitionedWaitsForLegacy checks that the switch is refused
// while a process still pulls from the single-process consumer (both
// would count the same events), and allowed once it stopped, whatever it
// left unprocessed: the partitions' first owners take that over.
func TestEnsurePartitionedWaitsForLegacy(t *testing.T) {
	_, js := startEvents(t, 0)
	ctx := testCtx(t)
	legacy, err := EnsureConsumer(ctx, js, ConsumerSettings{Durable: testLegacy, MaxAckPending: 100,
		AckWait: 30 * time.Second, Prefetch: 10}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		publish(t, js, "ioc.events.camera.kim-long.cam1")
	}
	ensure := func() error { return EnsurePartitioned(ctx, js, 8, testLegacy, zerolog.Nop()) }
	msgs := fetchN(t, legacy.cons, 1) // a live single-process iocd holds a delivery
	if err := ensure(); err == nil {
		t.Fatal("EnsurePartitioned succeeded while a process holds a delivery of the legacy consumer")
	}
	if tr := streamTransform(t, js); tr != nil {
		t.Fatalf("refused, yet the stream has transform %+v", tr)
	}
	if err := msgs[0].DoubleAck(ctx); err != nil { // it stopped cleanly
		t.Fatal(err)
	}
	waitNoPulls(t, legacy.cons)
	if err := ensure(); err != nil {
		t.Fatalf("EnsurePartitioned after the legacy process stopped (2 messages unprocessed): %v", err)
	}
	if tr := streamTransform(t, js); tr == nil || *tr != *PartitionTransform(8) {
		t.Fatalf("stream transform %+v", tr)
	}
	// Old messages keep their subject; new ones are partitioned.
	if got := storedSubject(t, js, 1); got != "ioc.events.camera.kim-long.cam1" {
		t.Errorf("message 1 now stored as %s", got)
	}
	if got := storedSubject(t, js, publish(t, js, "ioc.events.camera.kim-long.cam1")); got != "ioc.part.8.5.camera.kim-long.cam1" {
		t.Errorf("new message stored as %s", got)
	}
	if err := ensure(); err != nil {
		t.Errorf("EnsurePartitioned again: %v", err)
	}
}

func TestForeignLegacy(t *testing.T) {
	for _, tc := range []struct {
		subject string
		p       int
		want    bool
	}{
		{"ioc.events.camera.kim-long.cam1", 5, false}, // kim-long is partition 5 of 8
		{"ioc.events.camera.kim-long.cam1", 4, true},
		{"ioc.part.8.5.camera.kim-long.cam1", 4, false}, // partitioned: the filter already chose
		{"ioc.events.camera.kim-long", 4, false},        // malformed: not an event of any partition
		{"ioc.events.camera.kim-long.cam1.x", 4, false},
	} {
		if got := ForeignLegacy(8, tc.p, tc.subject); got != tc.want {
			t.Errorf("ForeignLegacy(8, %d, %q) = %v, want %v", tc.p, tc.subject, got, tc.want)
		}
	}
}

var testConsumerSettings = ConsumerSettings{MaxAckPending: 1000, AckWait: 30 * time.Second, Prefetch: 100}

// TestTakeOverFromLegacy checks where the first owner of a partition
// starts: after the legacy consumer's ack floor, or at the start.
func TestTakeOverFromLegacy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool
		acked  int // messages the legacy consumer acked
	}{
		{"no legacy consumer", false, 0},
		{"legacy acked nothing", true, 0},
		{"legacy acked 3", true, 3},
		{"legacy acked all", true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, js := startEvents(t, 0)
			ctx := testCtx(t)
			var legacy *Consumer
			if tc.legacy {
				var err error
				legacy, err = EnsureConsumer(ctx, js, ConsumerSettings{Durable: testLegacy, MaxAckPending: 100,
					AckWait: 30 * time.Second, Prefetch: 10}, zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
			}
			for range 5 {
				publish(t, js, "ioc.events.camera.kim-long.cam1")
			}
			if tc.acked > 0 {
				msgs := fetchN(t, legacy.cons, tc.acked)
				if err := msgs[tc.acked-1].DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			c, err := TakeOver(ctx, js, "iocd-p8-5-", 1, []string{"ioc.events.>"}, testLegacy,
				testConsumerSettings, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if c.cfg.Durable != "iocd-p8-5-1" {
				t.Errorf("consumer name %s, want iocd-p8-5-1", c.cfg.Durable)
			}
			floor, err := c.AckFloor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if floor != uint64(tc.acked) {
				t.Errorf("new consumer's ack floor %d, want %d", floor, tc.acked)
			}
			if tc.acked == 5 {
				info, err := c.cons.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.NumPending != 0 {
					t.Errorf("new consumer has %d pending, want 0", info.NumPending)
				}
				return
			}
			msgs := fetchN(t, c.cons, 5-tc.acked)
			for i, m := range msgs {
				if got, want := msgSeq(t, m), uint64(tc.acked+1+i); got != want {
					t.Errorf("message %d has stream seq %d, want %d", i, got, want)
				}
			}
			// The legacy consumer is not an earlier owner: it stays.
			if tc.legacy {
				if _, err := js.Consumer(ctx, EventsStream, testLegacy); err != nil {
					t.Errorf("legacy consumer: %v", err)
				}
			}
		})
	}
}

func consumerNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		out = append(out, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func nextSeqs(t *testing.T, p *Pull, n int) []*nats.Msg {
	t.Helper()
	var out []*nats.Msg
	for range n {
		out = append(out, next(t, p, 3*time.Second))
	}
	return out
}

func replySeq(m *nats.Msg) uint64 {
	seq, _, _ := AckSeqs(m.Reply)
	return seq
}

// TestTakeOverFromPreviousOwner runs the migration from the legacy
// consumer, then two takeovers of partition 5, with a zombie owner that
// keeps an open pull and acks late.
func TestTakeOverFromPreviousOwner(t *testing.T) {
	const n, p, prefix = 8, 5, "iocd-p8-5-"
	nc, js := startEvents(t, 0)
	ctx := testCtx(t)
	log := zerolog.Nop()
	if Partition(n, "kim-long") != p || Partition(n, "thuan-an") != p || Partition(n, "vy-da") == p {
		t.Fatal("the test's areas are not where docs/scale-out.md says")
	}

	// The single-process iocd processes 4 messages, then the stream is
	// partitioned.
	legacy, err := EnsureConsumer(ctx, js, ConsumerSettings{Durable: testLegacy, MaxAckPending: 100,
		AckWait: 30 * time.Second, Prefetch: 10}, log)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		publish(t, js, "ioc.events.camera.kim-long.cam1")
	}
	if err := fetchN(t, legacy.cons, 4)[3].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePartitioned(ctx, js, n, testLegacy, log); err != nil {
		t.Fatal(err)
	}
	// 10 events of partition 5, with others between them.
	var part []uint64 // stream seqs of partition 5, in order
	areas := []string{"kim-long", "thuan-an"}
	for i := range 10 {
		part = append(part, publish(t, js, "ioc.events.camera."+areas[i%2]+".cam1"))
		publish(t, js, "ioc.events.camera.vy-da.cam1")
		if i == 4 {
			publish(t, js, "ioc.events.camera.kim-long") // malformed
		}
	}

	// Owner A: the first, right after the legacy floor (4).
	a, err := TakeOver(ctx, js, prefix, 1, PartitionFilters(n, p), testLegacy, testConsumerSettings, log)
	if err != nil {
		t.Fatal(err)
	}
	if floor, err := a.AckFloor(ctx); err != nil || floor != 4 {
		t.Fatalf("owner A's ack floor %d (%v), want 4 (the legacy floor)", floor, err)
	}

	// Owner A crashes before acking: a takeover keeps its floor, not 0.
	a2, err := TakeOver(ctx, js, prefix, 2, PartitionFilters(n, p), testLegacy, testConsumerSettings, log)
	if err != nil {
		t.Fatal(err)
	}
	if floor, err := a2.AckFloor(ctx); err != nil || floor != 4 {
		t.Fatalf("after a takeover of an owner that acked nothing, ack floor %d (%v), want 4", floor, err)
	}
	if got, want := consumerNames(t, js), []string{testLegacy, prefix + "2"}; !slices.Equal(got, want) {
		t.Fatalf("consumers %v, want %v", got, want)
	}
	a = a2

	// A reads all 10 (its pull stays open for more), acks the first 3.
	itA, err := a.Pull()
	if err != nil {
		t.Fatal(err)
	}
	defer itA.Stop()
	got := nextSeqs(t, itA, 10)
	for i, m := range got {
		if s := replySeq(m); s != part[i] {
			t.Fatalf("owner A message %d: seq %d, want %d", i, s, part[i])
		}
		if !strings.HasPrefix(m.Subject, "ioc.part.8.5.") {
			t.Fatalf("owner A got %s", m.Subject)
		}
	}
	if err := itA.Ack(got[2].Reply); err != nil {
		t.Fatal(err)
	}
	waitFloor(t, a, part[2])
	zombie := got[9]

	// A stale consumer of an older epoch with a lower floor (2): the
	// highest of the floors wins.
	if _, err := js.CreateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{Durable: prefix + "0",
		AckPolicy: jetstream.AckAllPolicy, FilterSubjects: PartitionFilters(n, p),
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 3}); err != nil {
		t.Fatal(err)
	}
	// Another partition's consumer must survive the takeover.
	other, err := TakeOver(ctx, js, "iocd-p8-0-", 1, PartitionFilters(n, 0), testLegacy, testConsumerSettings, log)
	if err != nil {
		t.Fatal(err)
	}

	// Owner B takes over.
	b, err := TakeOver(ctx, js, prefix, 3, PartitionFilters(n, p), testLegacy, testConsumerSettings, log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := consumerNames(t, js), []string{testLegacy, other.cfg.Durable, prefix + "3"}; !slices.Equal(got, want) {
		t.Fatalf("consumers after the takeover %v, want %v", got, want)
	}
	if _, err := js.Consumer(ctx, EventsStream, prefix+"2"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("owner A's consumer after the takeover: %v, want not found", err)
	}
	if floor, err := b.AckFloor(ctx); err != nil || floor != part[2] {
		t.Fatalf("owner B's ack floor %d (%v), want %d", floor, err, part[2])
	}

	// The zombie acks everything it read, late.
	if err := itA.Ack(zombie.Reply); err != nil {
		t.Logf("zombie ack: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if floor, err := b.AckFloor(ctx); err != nil || floor != part[2] {
		t.Fatalf("after the zombie's ack, owner B's ack floor %d (%v), want %d", floor, err, part[2])
	}

	// New events after the takeover.
	for range 3 {
		part = append(part, publish(t, js, "ioc.events.camera.kim-long.cam1"))
	}
	// The zombie's open pull gets none of them.
	zctx, zcancel := context.WithTimeout(ctx, time.Second)
	defer zcancel()
	if m, err := itA.Next(zctx); err == nil {
		t.Fatalf("the zombie's pull received %s (seq %d) after the takeover", m.Subject, replySeq(copyMsg(m)))
	} else {
		t.Logf("zombie's pull after the takeover: %v", err)
	}

	// B gets everything after A's floor, in order, and nothing else.
	itB, err := b.Pull()
	if err != nil {
		t.Fatal(err)
	}
	want := part[3:]
	gotB := nextSeqs(t, itB, len(want))
	for i, m := range gotB {
		if s := replySeq(m); s != want[i] {
			t.Errorf("owner B message %d: seq %d, want %d", i, s, want[i])
		}
		if _, cseq, _ := AckSeqs(m.Reply); cseq != uint64(i+1) {
			t.Errorf("owner B message %d: delivery seq %d, want %d", i, cseq, i+1)
		}
		if PublishedSubject(m.Subject) != "ioc.events.camera."+strings.Split(m.Subject, ".")[5]+".cam1" ||
			!strings.HasPrefix(m.Subject, "ioc.part.8.5.") {
			t.Errorf("owner B got %s", m.Subject)
		}
	}
	bctx, bcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer bcancel()
	if m, err := itB.Next(bctx); err == nil {
		t.Errorf("owner B got an extra message %s", m.Subject)
	}

	// B's own acks move its floor (not ignored as with a reused name).
	if err := itB.Ack(gotB[4].Reply); err != nil {
		t.Fatal(err)
	}
	waitFloor(t, b, want[4])

	// Reset (gap handling) redelivers after the floor, in order. After
	// Stop the server keeps the pull request until it notices nobody
	// listens: wait until it has dropped it, or that request may take the
	// redeliveries (the pipeline's restart detects that case).
	itB.Stop()
	waitNoPulls(t, b.cons)
	if err := b.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	itB, err = b.Pull()
	if err != nil {
		t.Fatal(err)
	}
	defer itB.Stop()
	for i, m := range nextSeqs(t, itB, len(want)-5) {
		if s := replySeq(m); s != want[5+i] {
			t.Errorf("after Reset, message %d: seq %d, want %d", i, s, want[5+i])
		}
	}
}

// TestShares: the names a share gives to durable state (lease keys,
// consumer names, fingerprint scopes) are stable, and every key reads back.
func TestShares(t *testing.T) {
	shares := Shares(8)
	if len(shares) != 9 || !shares[8].Rejects {
		t.Fatalf("shares of 8: %v", shares)
	}
	p5 := shares[5]
	if p5.Key() != "part.8.5" || p5.ConsumerPrefix() != "iocd-p8-5-" || p5.Scope() != "8/5" ||
		!slices.Equal(p5.Filters(), PartitionFilters(8, 5)) {
		t.Errorf("partition 5: %s %s %s %v", p5.Key(), p5.ConsumerPrefix(), p5.Scope(), p5.Filters())
	}
	rej := shares[8]
	if rej.Key() != "part.8.rejects" || rej.ConsumerPrefix() != "iocd-p8-rejects-" || !slices.Equal(rej.Filters(), RejectsFilters) ||
		rej.Owns("kim-long") || rej.Foreign("ioc.events.environment.kim-long.wl-kim-long") {
		t.Errorf("rejects: %s %s %v", rej.Key(), rej.ConsumerPrefix(), rej.Filters())
	}
	for _, sh := range shares {
		got, err := ParseShare(8, sh.Key())
		if err != nil || got != sh {
			t.Errorf("%s reads back as %v, %v", sh.Key(), got, err)
		}
	}
	for _, key := range []string{"part.8.8", "part.8.-1", "part.16.3", "part.8.05", "part.8.", "other"} {
		if _, err := ParseShare(8, key); err == nil {
			t.Errorf("%q accepted", key)
		}
	}
	kimLong := Partition(8, "kim-long")
	if !shares[kimLong].Owns("kim-long") || shares[(kimLong+1)%8].Owns("kim-long") {
		t.Error("a share must own exactly its areas")
	}
}
