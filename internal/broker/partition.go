package broker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/subject"
)

// Partitioned mode (docs/scale-out.md): IOC_EVENTS stores every
// well-formed event subject ioc.events.<kind>.<area>.<source> as
// ioc.part.<N>.<p>.<kind>.<area>.<source>, where p is nats-server's
// {{partition(N,2)}} of the area. Each partition has one consumer, owned by
// one iocd at a time, so every window and every alert grouped by area or
// source is computed whole in one process. Subjects that do not have the
// contract's shape stay as published and go to the rejects consumer.

// Partition is nats-server's {{partition(n, ...)}} of the given wildcard
// tokens: FNV-1a 32 over the tokens concatenated without separator, modulo
// n. Restore uses it to pick the stored rows of a partition.
func Partition(n int, tokens ...string) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	for _, t := range tokens {
		h.Write([]byte(t))
	}
	return int(h.Sum32() % uint32(n))
}

func partitionPrefix(n int) string { return subject.Partitioned(n) }

// PartitionTransform is the IOC_EVENTS subject transform for n partitions.
func PartitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source: subject.WellFormedEvents,
		Destination: fmt.Sprintf("%s{{partition(%d,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}",
			partitionPrefix(n), n),
	}
}

// PublishedSubject turns a stored subject back into the one the publisher
// used: the contract's subject check and the dead letters' original
// subject are about what was published. Other subjects are returned as
// they are.
func PublishedSubject(stored string) string { return subject.Published(stored) }

// RejectsFilters select the subjects the transform leaves alone: anything
// under ioc.events.> that does not have exactly three tokens after it.
var RejectsFilters = subject.MalformedEvents

// legacyFilter matches well-formed events stored before the partition
// transform was added; nothing stored after it has this shape.
const legacyFilter = subject.WellFormedEvents

// PartitionFilters selects the events of partition p of n, and the events
// stored before the switch to partitions (every area: the pipeline skips
// those of other partitions with ForeignLegacy).
func PartitionFilters(n, p int) []string {
	return []string{partitionPrefix(n) + strconv.Itoa(p) + ".>", legacyFilter}
}

// ForeignLegacy reports whether subject is an event stored before the
// switch whose area belongs to another partition than p of n.
func ForeignLegacy(n, p int, stored string) bool {
	_, area, _, ok := subject.ParseEvent(stored)
	return ok && Partition(n, area) != p
}

// EnsurePartitioned adds the partition transform to IOC_EVENTS when it is
// missing. Messages stored before keep their subject; the partitions'
// first owners consume those after the single-process consumer's (legacy)
// ack floor. The switch is refused while a process still pulls from that
// consumer: two processes would count the same events.
func EnsurePartitioned(ctx context.Context, js jetstream.JetStream, n int, legacy string, log zerolog.Logger) error {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("broker: look up stream %s: %w", EventsStream, err)
	}
	cfg := s.CachedInfo().Config
	want := PartitionTransform(n)
	if cfg.SubjectTransform != nil && *cfg.SubjectTransform == *want {
		return nil
	}
	if cfg.SubjectTransform != nil {
		return fmt.Errorf("broker: stream %s already partitions with %q; changing IOC_PARTITIONS needs the migration of docs/scale-out.md",
			EventsStream, cfg.SubjectTransform.Destination)
	}
	c, err := s.Consumer(ctx, legacy)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return fmt.Errorf("broker: look up consumer %s: %w", legacy, err)
	case legacyActive(c.CachedInfo()):
		return fmt.Errorf("broker: a process still consumes from %s (pull requests waiting, or deliveries awaiting their ack "+
			"for less than the ack wait): stop the single-process iocd (IOC_PARTITIONS=0) before starting partitioned ones", legacy)
	}
	cfg.SubjectTransform = want
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("broker: add the partition transform to %s: %w", EventsStream, err)
	}
	log.Warn().Str("stream", EventsStream).Str("source", want.Source).Str("destination", want.Destination).
		Msg("stream changed: events are now stored by partition (IOC_PARTITIONS)")
	return nil
}

// legacyActive tells whether a process may still consume through ci: it
// has pull requests waiting, or deliveries not yet acked and not yet
// expired. After a crash, the switch waits out the ack wait.
func legacyActive(ci *jetstream.ConsumerInfo) bool {
	if ci.NumWaiting > 0 {
		return true
	}
	return ci.NumAckPending > 0 && ci.Delivered.Last != nil && time.Since(*ci.Delivered.Last) < ci.Config.AckWait
}

// CheckUnpartitioned refuses a single-process start on a partitioned
// stream: its consumer of ioc.events.> would see only malformed subjects.
func CheckUnpartitioned(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("broker: look up stream %s: %w", EventsStream, err)
	}
	if t := s.CachedInfo().Config.SubjectTransform; t != nil {
		return fmt.Errorf("broker: stream %s stores events by partition (%q) but IOC_PARTITIONS is 0: set IOC_PARTITIONS to match",
			EventsStream, t.Destination)
	}
	return nil
}

// TakeOver gives this process the consumer of one partition. Every consumer
// whose name starts with prefix belongs to an earlier owner: the new one
// starts right after the highest of their ack floors (each owner acks only
// what it wrote), under a new name (prefix + epoch), and the old ones are
// deleted. Deleting ends a dead or paused owner's pull requests, and the
// new name makes its late acks go nowhere: a reused name would accept
// them and then ignore the new owner's lower delivery sequences.
//
// The first owner of a partition starts after the ack floor of the
// single-process consumer (legacy), if there is one: that is where the
// stored state it restores ends.
func TakeOver(ctx context.Context, js jetstream.JetStream, prefix string, epoch uint64, filters []string, legacy string,
	cs ConsumerSettings, log zerolog.Logger) (*Consumer, error) {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("broker: look up stream %s: %w", EventsStream, err)
	}
	var old []string
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			old = append(old, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("broker: list consumers of %s: %w", EventsStream, err)
	}
	var floor uint64
	for _, name := range old {
		c, err := s.Consumer(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("broker: consumer %s: %w", name, err)
		}
		if c != nil {
			floor = max(floor, c.CachedInfo().AckFloor.Stream)
		}
	}
	if len(old) == 0 && legacy != "" {
		c, err := s.Consumer(ctx, legacy)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		case err != nil:
			return nil, fmt.Errorf("broker: look up consumer %s: %w", legacy, err)
		default:
			floor = c.CachedInfo().AckFloor.Stream
		}
	}
	for _, name := range old {
		if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("broker: delete the previous owner's consumer %s: %w", name, err)
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        prefix + strconv.FormatUint(epoch, 10),
		Description:    "iocd partition",
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        cs.AckWait,
		MaxAckPending:  cs.MaxAckPending,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		FilterSubjects: filters,
	}
	if floor > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = floor + 1
	}
	c, err := s.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: consumer %s on %s: %w", cfg.Durable, EventsStream, err)
	}
	log.Info().Str("consumer", cfg.Durable).Strs("previous", old).Uint64("from_seq", floor+1).Strs("filters", filters).
		Msg("took over partition consumer")
	return &Consumer{js: js, cfg: cfg, cons: c, pre: max(cs.Prefetch, 1), log: log}, nil
}

// Share is one lease of the layout with N partitions: partition P, or the
// rejects share that dead-letters the malformed subjects the transform
// leaves alone. Its key, consumer names, scope and filters are built here
// and nowhere else; they name durable state, so they never change.
type Share struct {
	N, P    int
	Rejects bool
}

// Shares lists the leases of n partitions: every partition, then rejects.
func Shares(n int) []Share {
	out := make([]Share, 0, n+1)
	for p := range n {
		out = append(out, Share{N: n, P: p})
	}
	return append(out, Share{N: n, Rejects: true})
}

// ParseShare reads a lease key of the layout with n partitions.
func ParseShare(n int, key string) (Share, error) {
	name, ok := strings.CutPrefix(key, "part."+strconv.Itoa(n)+".")
	if ok && name == "rejects" {
		return Share{N: n, Rejects: true}, nil
	}
	p, err := strconv.Atoi(name)
	if !ok || err != nil || p < 0 || p >= n || strconv.Itoa(p) != name {
		return Share{}, fmt.Errorf("lease key %q is not a partition of %d", key, n)
	}
	return Share{N: n, P: p}, nil
}

func (s Share) name() string {
	if s.Rejects {
		return "rejects"
	}
	return strconv.Itoa(s.P)
}

// Key is the lease key: part.<N>.<p> or part.<N>.rejects.
func (s Share) Key() string { return "part." + strconv.Itoa(s.N) + "." + s.name() }

// String names the share in logs: <p> or rejects.
func (s Share) String() string { return s.name() }

// ConsumerPrefix starts the name of every consumer of the share (one per
// ownership period, see TakeOver).
func (s Share) ConsumerPrefix() string { return "iocd-p" + strconv.Itoa(s.N) + "-" + s.name() + "-" }

// Scope names the share in the fingerprints of alert groups keyed by
// neither area nor source.
func (s Share) Scope() string { return strconv.Itoa(s.N) + "/" + s.name() }

// Filters are the subjects the share's consumer reads.
func (s Share) Filters() []string {
	if s.Rejects {
		return RejectsFilters
	}
	return PartitionFilters(s.N, s.P)
}

// Owns reports whether an area's events are the share's.
func (s Share) Owns(area string) bool { return !s.Rejects && Partition(s.N, area) == s.P }

// Foreign reports whether a stored subject is an event of another share
// stored before the switch to partitions (see ForeignLegacy).
func (s Share) Foreign(stored string) bool { return !s.Rejects && ForeignLegacy(s.N, s.P, stored) }
