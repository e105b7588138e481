//go:build integration

package integration

// Scale-out (docs/scale-out.md): three iocd processes share IOC_EVENTS by
// area partition through leases in a KV bucket; processes are SIGKILLed
// during the load and their partitions are taken over. The result must be
// exactly the ground truth, as with one process.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/broker"
)

const (
	scaleParts = 8
	leaseTTL   = 5 * time.Second
)

// scaleAreas cover all 8 partitions (broker.Partition(8, area)): 5, 7, 0,
// 6, 4, 1, 2, 3.
var scaleAreas = []string{"kim-long", "phu-xuan", "vy-da", "thuan-hoa", "huong-an", "phong-dinh", "phong-thai", "thanh-thuy"}

// leaseHolders reads the bucket: lease key → instance holding it.
func leaseHolders(t *testing.T, js jetstream.JetStream) map[string]string {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "iocd_leases")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	l, err := kv.ListKeysFiltered(ctx, "part.>")
	if err != nil {
		return nil
	}
	for k := range l.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var h struct {
			Instance string `json:"instance"`
		}
		if json.Unmarshal(e.Value(), &h) == nil {
			out[k] = h.Instance
		}
	}
	return out
}

func perInstance(h map[string]string) map[string]int {
	out := map[string]int{}
	for _, inst := range h {
		out[inst]++
	}
	return out
}

// partitionConsumers lists the partition consumers of IOC_EVENTS.
func partitionConsumers(t *testing.T, js jetstream.JetStream) []*jetstream.ConsumerInfo {
	t.Helper()
	var out []*jetstream.ConsumerInfo
	s := mustStream(t, js, "IOC_EVENTS")
	l := s.ConsumerNames(context.Background()) // what iocd's own permissions allow
	for name := range l.Name() {
		if !strings.HasPrefix(name, fmt.Sprintf("iocd-p%d-", scaleParts)) {
			continue
		}
		if c, err := s.Consumer(context.Background(), name); err == nil {
			out = append(out, c.CachedInfo())
		}
	}
	return out
}

func ackedTotal(cs []*jetstream.ConsumerInfo) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.AckFloor.Stream
	}
	return n
}

// waitPartitionsDrained waits until every lease is held and every partition
// consumer has acknowledged everything.
func waitPartitionsDrained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	waitFor(t, 180*time.Second, "every partition consumer to acknowledge every message", func() (bool, string) {
		if h := leaseHolders(t, js); len(h) != scaleParts+1 {
			return false, fmt.Sprintf("%d of %d leases held", len(h), scaleParts+1)
		}
		cs := partitionConsumers(t, js)
		var busy []string
		for _, c := range cs {
			if c.NumPending+uint64(c.NumAckPending) > 0 {
				busy = append(busy, fmt.Sprintf("%s: %d pending, %d awaiting ack", c.Name, c.NumPending, c.NumAckPending))
			}
		}
		return len(cs) == scaleParts+1 && len(busy) == 0, fmt.Sprintf("%d consumers; %s", len(cs), strings.Join(busy, "; "))
	})
}

// startPartitioned starts one partitioned iocd per name (its instance).
func startPartitioned(t *testing.T, natsURL, db string, names ...string) map[string]*iocd {
	t.Helper()
	procs := map[string]*iocd{}
	for _, name := range names {
		p := newIOCD(t, natsURL, db, fmt.Sprintf("IOC_PARTITIONS=%d", scaleParts), "IOC_LEASE_TTL="+leaseTTL.String(),
			"IOC_INSTANCE="+name)
		p.start()
		procs[name] = p
	}
	return procs
}

// TestFaultScaleOutSIGKILL: three processes with IOC_PARTITIONS=8; during
// a seeded load the owner of kim-long's partition, then random ones, are
// SIGKILLed; the others take their partitions over within the lease TTL,
// each killed process comes back and takes a share again.
func TestFaultScaleOutSIGKILL(t *testing.T) {
	rng := rand.New(rand.NewSource(faultSeed(t)))
	db, conn := testDB(t)
	ns := startNATS(t)
	names := []string{"a", "b", "c"}
	procs := startPartitioned(t, ns.url(), db, names...)
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	waitFor(t, 60*time.Second, "every lease held, at least 2 by each process", func() (bool, string) {
		h := leaseHolders(t, js)
		per := perInstance(h)
		ok := len(h) == scaleParts+1
		for _, name := range names {
			ok = ok && per[name] >= 2
		}
		return ok, fmt.Sprint(per)
	})

	msgs := buildCorpusOf(t, 3, corpusBase(), 500, devicesIn(scaleAreas)) // 2 h 47 min of event time, all in the past
	// Subjects without the contract's three tokens are not partitioned:
	// the rejects share dead-letters them.
	valid := msgs[0]
	msgs = append(msgs,
		message{subject: valid.subject + ".extra", data: valid.data, reason: "subject_mismatch"},
		message{subject: "ioc.events.camera", data: valid.data, reason: "subject_mismatch"})
	published := publishSlowly(t, js, msgs, 80, 200*time.Millisecond)

	kimLong := fmt.Sprintf("part.%d.%d", scaleParts, broker.Partition(scaleParts, "kim-long"))
	const kills = 3
	for kill := 0; kill < kills; kill++ {
		before := ackedTotal(partitionConsumers(t, js))
		waitFor(t, 60*time.Second, "progress since the last kill", func() (bool, string) {
			now := ackedTotal(partitionConsumers(t, js))
			return now > before+500, fmt.Sprintf("%d acknowledged, was %d", now, before)
		})
		time.Sleep(time.Duration(rng.Intn(500)) * time.Millisecond)
		h := leaseHolders(t, js)
		victim := h[kimLong]
		if kill > 0 {
			victim = names[rng.Intn(len(names))]
		}
		var keys []string
		for k, inst := range h {
			if inst == victim {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		pending := uint64(0)
		for _, c := range partitionConsumers(t, js) {
			pending += c.NumPending + uint64(c.NumAckPending)
		}
		// The publisher still running is what makes the kill land in the
		// load; how many messages wait at that instant is chance (the
		// consumers keep up with it between two of its chunks).
		loadRunning := true
		select {
		case <-published:
			loadRunning = false
		default:
		}
		procs[victim].kill()
		killed := time.Now()
		t.Logf("kill %d: SIGKILL %s holding %v; %d messages pending or unacknowledged", kill+1, victim, keys, pending)
		if !loadRunning {
			t.Errorf("kill %d landed after the load; it proves nothing", kill+1)
		}
		waitFor(t, leaseTTL+15*time.Second, "the victim's partitions taken over", func() (bool, string) {
			h := leaseHolders(t, js)
			var left []string
			for _, k := range keys {
				if inst, ok := h[k]; !ok || inst == victim {
					left = append(left, k)
				}
			}
			return len(left) == 0, fmt.Sprint("not yet taken: ", left)
		})
		t.Logf("kill %d: leases re-held %s after the SIGKILL (TTL %s)", kill+1, time.Since(killed).Round(10*time.Millisecond), leaseTTL)
		procs[victim].start()
		// The others hand part of their share back to it, gracefully
		// (drain, ack, release), while the load goes on.
		waitFor(t, 60*time.Second, "the restarted process to get its share back", func() (bool, string) {
			per := perInstance(leaseHolders(t, js))
			return per[victim] >= 2, fmt.Sprint(per)
		})
		t.Logf("kill %d: %s restarted; leases now %v", kill+1, victim, perInstance(leaseHolders(t, js)))
	}
	<-published
	waitPartitionsDrained(t, js)
	t.Logf("leases at the end: %v", perInstance(leaseHolders(t, js)))
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	last := checkAlertInvariants(t, js, conn, db)
	// Every replica's board follows IOC_ALERTS: each shows the whole
	// city's firing alerts, not only its own partitions'.
	var want []string
	for _, a := range last {
		if a.Status == "firing" {
			want = append(want, a.ID)
		}
	}
	sort.Strings(want)
	for _, name := range names {
		waitFor(t, 10*time.Second, name+"'s /api/v1/alerts to show every firing alert", func() (bool, string) {
			var got []string
			for _, a := range liveAlerts(t, procs[name].http) {
				got = append(got, a.ID)
			}
			sort.Strings(got)
			return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("%d shown, %d firing", len(got), len(want))
		})
	}
	t.Logf("%d alerts firing at the end, shown by every replica", len(want))
	// SIGTERM hands the partitions over at once (drain, ack, delete the
	// leases), well before they would expire.
	for i, name := range names {
		err, took := procs[name].terminate(30 * time.Second)
		if err != nil {
			t.Fatalf("SIGTERM %s: %v after %s", name, err, took)
		}
		t.Logf("SIGTERM %s: exit 0 after %s", name, took.Round(time.Millisecond))
		if i < len(names)-1 {
			stopped := time.Now()
			waitFor(t, leaseTTL/2, "the others to take every lease over", func() (bool, string) {
				h := leaseHolders(t, js)
				per := perInstance(h)
				return len(h) == scaleParts+1 && per[name] == 0, fmt.Sprint(per)
			})
			t.Logf("SIGTERM %s: its leases re-held after %s", name, time.Since(stopped).Round(10*time.Millisecond))
		}
	}
}

// TestFaultScaleOutZombie: the owner of kim-long's partition is frozen
// (SIGSTOP) past its lease under load, so another process takes the
// partition over; then it is thawed (SIGCONT) with batches in hand. Its
// fence must stop it before it writes or acks anything, and the result
// must still be exactly the ground truth.
func TestFaultScaleOutZombie(t *testing.T) {
	db, conn := testDB(t)
	ns := startNATS(t)
	names := []string{"a", "b"}
	procs := startPartitioned(t, ns.url(), db, names...)
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	waitFor(t, 60*time.Second, "every lease held, at least 3 by each process", func() (bool, string) {
		h := leaseHolders(t, js)
		per := perInstance(h)
		return len(h) == scaleParts+1 && per["a"] >= 3 && per["b"] >= 3, fmt.Sprint(per)
	})
	msgs := buildCorpusOf(t, 4, corpusBase(), 300, devicesIn(scaleAreas))
	published := publishSlowly(t, js, msgs, 80, 200*time.Millisecond)
	waitFor(t, 60*time.Second, "progress", func() (bool, string) {
		n := ackedTotal(partitionConsumers(t, js))
		return n > 2000, fmt.Sprint(n)
	})
	kimLong := fmt.Sprintf("part.%d.%d", scaleParts, broker.Partition(scaleParts, "kim-long"))
	zombie := leaseHolders(t, js)[kimLong]
	other := names[0]
	if other == zombie {
		other = names[1]
	}
	z := procs[zombie]
	if err := z.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitFor(t, leaseTTL+15*time.Second, "the frozen owner's partition taken over", func() (bool, string) {
		h := leaseHolders(t, js)[kimLong]
		return h == other, "held by " + h
	})
	t.Logf("%s frozen; %s took %s over after %s", zombie, other, kimLong, time.Since(stopped).Round(10*time.Millisecond))
	time.Sleep(2 * time.Second) // the new owner writes and acks meanwhile
	if err := z.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the thawed process to notice it lost its leases", func() (bool, string) {
		b, _ := os.ReadFile(z.logs)
		return strings.Contains(string(b), `"message":"lease lost`), "no \"lease lost\" in its log yet"
	})
	time.Sleep(time.Second)
	b, _ := os.ReadFile(z.logs)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "lease lost") {
			t.Logf("%s: %s", zombie, line)
		}
	}
	<-published
	waitPartitionsDrained(t, js)
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
	// The zombie rejoined: it runs, holds a share again and serves the
	// whole city's alerts like the other.
	waitFor(t, 30*time.Second, "the thawed process to hold a share again", func() (bool, string) {
		per := perInstance(leaseHolders(t, js))
		return per[zombie] >= 3, fmt.Sprint(per)
	})
}

// TestFaultScaleOutSwitch: a single-process iocd runs under load, is
// stopped (SIGTERM) while events keep coming, and two partitioned
// processes take over the same stream. Events stored before the switch
// and not yet processed, and those stored after it, are all counted once.
func TestFaultScaleOutSwitch(t *testing.T) {
	db, conn := testDB(t)
	ns := startNATS(t)
	single := newIOCD(t, ns.url(), db)
	single.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	msgs := buildCorpusOf(t, 5, corpusBase(), 300, devicesIn(scaleAreas))
	published := publishSlowly(t, js, msgs, 80, 200*time.Millisecond)
	waitFor(t, 60*time.Second, "the single process to make progress", func() (bool, string) {
		f := infoFloor(consumerInfo(t, js))
		return f > 1500, fmt.Sprint("ack floor ", f)
	})
	if err, _ := single.terminate(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	time.Sleep(2 * time.Second) // events arrive with nobody consuming them
	info := consumerInfo(t, js)
	t.Logf("single process stopped at ack floor %d with %d messages left", infoFloor(info), pendingOf(info))
	if pendingOf(info) == 0 {
		t.Fatal("nothing left for the partitioned processes: the test proves nothing")
	}
	startPartitioned(t, ns.url(), db, "a", "b")
	<-published
	waitPartitionsDrained(t, js)
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
	last := mustStream(t, js, "IOC_EVENTS")
	si, err := last.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switched: %d messages in IOC_EVENTS, exact", si.State.Msgs)
}
