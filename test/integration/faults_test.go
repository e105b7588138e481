//go:build integration

package integration

// The fault suite (`make test-faults`, part of `make test`): one seeded
// load per case, a fault in the middle of it, and the same exact
// comparison with the ground truth as the pipeline test — no event lost,
// none counted twice in window_agg FINAL, no alert transition duplicated
// or lost. IOC_FAULT_SEED changes the seed; every case logs it.

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/test/testenv"
)

func faultSeed(t *testing.T) int64 {
	seed := int64(1)
	if s := os.Getenv("IOC_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("IOC_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (IOC_FAULT_SEED)", seed)
	return seed
}

// publishSlowly publishes msgs in slices of n every pause, in the
// background, retrying each message until JetStream stores it (the same
// Nats-Msg-Id, so a retry of a stored message is dropped as a duplicate).
// Messages without an id get one of their own for the retries.
func publishSlowly(t *testing.T, js jetstream.JetStream, msgs []message, n int, pause time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(msgs); i += n {
			publishRetrying(t, js, msgs[i:min(i+n, len(msgs))], i)
			time.Sleep(pause)
		}
	}()
	return done
}

func publishRetrying(t *testing.T, js jetstream.JetStream, msgs []message, offset int) {
	deadline := time.Now().Add(3 * time.Minute)
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d messages not stored after 3 minutes of retries", len(pending))
			return
		}
		type sent struct {
			i int
			f jetstream.PubAckFuture
		}
		var futures []sent
		var failed []int
		for _, i := range pending {
			m := msgs[i]
			id := m.msgID
			if id == "" {
				id = fmt.Sprintf("fault-retry-%d", offset+i)
			}
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{"Nats-Msg-Id": []string{id}}})
			if err != nil {
				failed = append(failed, i)
				continue
			}
			futures = append(futures, sent{i, f})
		}
		for _, s := range futures {
			select {
			case <-s.f.Ok():
			case <-s.f.Err():
				failed = append(failed, s.i)
			case <-time.After(10 * time.Second):
				failed = append(failed, s.i)
			}
		}
		pending = failed
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestFaultSIGKILL: iocd is SIGKILLed ten times at seeded random moments
// while a seeded corpus streams in, and started again each time.
func TestFaultSIGKILL(t *testing.T) {
	rng := rand.New(rand.NewSource(faultSeed(t)))
	db, conn, d, js := startPipeline(t)
	msgs := buildCorpus(t, 2, corpusBase(), 300)
	published := publishSlowly(t, js, msgs, 150, 250*time.Millisecond) // about 13 s: the ten kills land in it
	midStream, floor := 0, uint64(0)
	const kills = 10
	for kill := 0; kill < kills; kill++ {
		// Let each process make progress first (start-up restores state),
		// so that every kill lands in a different place of the stream.
		waitFor(t, 30*time.Second, "iocd to acknowledge past the last kill", func() (bool, string) {
			info := consumerInfo(t, js)
			return info != nil && (infoFloor(info) > floor || pendingOf(info)+uint64(ackPendingOf(info)) == 0),
				fmt.Sprintf("ack floor %d", infoFloor(info))
		})
		time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
		info := consumerInfo(t, js)
		floor = infoFloor(info)
		loadRunning := true
		select {
		case <-published:
			loadRunning = false
		default:
		}
		d.kill()
		// In the stream: the publisher still runs, or messages wait to be
		// delivered or acknowledged (the consumer keeps up with the
		// publisher between two of its chunks, so the count alone is chance).
		if loadRunning || info != nil && info.NumPending+uint64(info.NumAckPending) > 0 {
			midStream++
		}
		t.Logf("kill %d: ack floor %d, %d pending, %d awaiting ack", kill+1, infoFloor(info), pendingOf(info), ackPendingOf(info))
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		d.start()
	}
	<-published
	if midStream < kills/2 {
		t.Fatalf("only %d of %d kills landed mid-stream; the test proves nothing", midStream, kills)
	}
	waitDrained(t, js)
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
}

// truthFromStream computes the ground truth from IOC_EVENTS as stored, in
// stream order: when the publisher had to retry, its messages were stored
// in another order than they were built, and lateness (hence what is too
// late to count) depends on the order of arrival.
func truthFromStream(t *testing.T, js jetstream.JetStream, built []message) truth {
	t.Helper()
	reason := map[string]string{}
	for _, m := range built {
		reason[m.subject+"\x00"+string(m.data)] = m.reason
	}
	s := mustStream(t, js, "IOC_EVENTS")
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored []message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("IOC_EVENTS seq %d: %v", seq, err)
		}
		subject := broker.PublishedSubject(m.Subject) // as published, before the partition transform
		r, ok := reason[subject+"\x00"+string(m.Data)]
		if !ok {
			t.Fatalf("IOC_EVENTS seq %d was never published: %s", seq, m.Subject)
		}
		stored = append(stored, message{subject: subject, data: m.Data, msgID: m.Header.Get("Nats-Msg-Id"), reason: r})
	}
	return groundTruth(stored)
}

func countRejected(tr truth) int {
	n := 0
	for _, k := range tr.rejected {
		n += k
	}
	return n
}

// clickHouse is a ClickHouse server of the test's own, started by the
// project's script on free ports and a temporary data directory, so that
// it can be stopped without disturbing the shared one.
type clickHouse struct {
	t   *testing.T
	env []string
	tcp int
}

func startPrivateClickHouse(t *testing.T, env ...string) *clickHouse {
	t.Helper()
	c := &clickHouse{t: t, tcp: testenv.FreePort(t)}
	c.env = append(os.Environ(), "CH_DIR="+t.TempDir(), "CH_TCP_PORT="+strconv.Itoa(c.tcp),
		"CH_HTTP_PORT="+strconv.Itoa(testenv.FreePort(t)), "CH_INTERSERVER_PORT="+strconv.Itoa(testenv.FreePort(t)))
	c.env = append(c.env, env...)
	c.run("start")
	t.Cleanup(func() { c.run("stop") })
	return c
}

func (c *clickHouse) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.tcp) }

func (c *clickHouse) run(action string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(c.t), "deployments", "scripts", "clickhouse.sh"), action)
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
	}
}

// rssMB reads a process's resident set size.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestFaultClickHouseOutage: ClickHouse stops for 60 s while events keep
// coming. iocd must stop acknowledging, keep its memory bounded, report
// not ready, retry, and catch up exactly when ClickHouse is back.
func TestFaultClickHouseOutage(t *testing.T) {
	faultSeed(t)
	ch := startPrivateClickHouse(t)
	db, conn := testDBAt(t, ch.addr())
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_CLICKHOUSE_ADDR="+ch.addr())
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	msgs := buildCorpus(t, 3, corpusBase(), 300)
	published := publishSlowly(t, js, msgs, 100, 300*time.Millisecond)
	time.Sleep(3 * time.Second)

	const outage = 60 * time.Second
	before := consumerInfo(t, js)
	ch.run("stop")
	stopped := time.Now()
	peak, wentUnready := 0.0, false
	for time.Since(stopped) < outage {
		peak = max(peak, rssMB(d.cmd.Process.Pid))
		if !ready(d.http) {
			wentUnready = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	during := consumerInfo(t, js)
	ch.run("start")
	restarted := time.Now()
	waitFor(t, 60*time.Second, "/readyz to return to 200", func() (bool, string) { return ready(d.http), "not ready" })
	<-published
	waitDrained(t, js)
	caughtUp := time.Since(restarted)
	t.Logf("outage %s: ack floor %d → %d during it (%d pending at its end); peak RSS %.0f MB; ready again and drained %s after the restart",
		outage, infoFloor(before), infoFloor(during), pendingOf(during)+uint64(ackPendingOf(during)), peak, caughtUp.Round(time.Millisecond))
	if !wentUnready {
		t.Error("/readyz never reported the outage")
	}
	if peak > 500 {
		t.Errorf("peak RSS %.0f MB during the outage: memory is not bounded", peak)
	}
	logs, _ := os.ReadFile(d.logs)
	if !strings.Contains(string(logs), "write failed; holding the batch and retrying") || !strings.Contains(string(logs), "writes succeed again") {
		t.Error("the log does not tell the outage and the recovery")
	}
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
}

// TestFaultNATSRestart: the NATS server is killed and started again while
// events stream in; the publisher retries what was not stored.
func TestFaultNATSRestart(t *testing.T) {
	rng := rand.New(rand.NewSource(faultSeed(t)))
	db, conn := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	msgs := buildCorpus(t, 4, corpusBase(), 300)
	published := publishSlowly(t, js, msgs, 200, 150*time.Millisecond)
	for i := 0; i < 2; i++ {
		time.Sleep(time.Duration(1000+rng.Intn(1500)) * time.Millisecond)
		if err := ns.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = ns.cmd.Wait()
		ns.cmd = nil
		t.Logf("nats-server killed (%d)", i+1)
		time.Sleep(time.Duration(500+rng.Intn(1500)) * time.Millisecond)
		ns.start()
	}
	<-published
	waitDrained(t, js)
	waitFor(t, 30*time.Second, "/readyz to return to 200", func() (bool, string) { return ready(d.http), "not ready" })
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
}

// TestFaultSIGTERM: SIGTERM during load drains and exits 0 within 30 s;
// the next process continues exactly where it stopped.
func TestFaultSIGTERM(t *testing.T) {
	rng := rand.New(rand.NewSource(faultSeed(t)))
	db, conn, d, js := startPipeline(t)
	msgs := buildCorpus(t, 5, corpusBase(), 300)
	published := publishSlowly(t, js, msgs, 150, 250*time.Millisecond) // about 13 s: the three SIGTERMs land in it
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(800+rng.Intn(1200)) * time.Millisecond)
		info := consumerInfo(t, js)
		err, took := d.terminate(30 * time.Second)
		if err != nil {
			t.Fatalf("SIGTERM %d: %v", i+1, err)
		}
		after := consumerInfo(t, js)
		// Deliveries prefetched but not yet handled stay unacknowledged;
		// the next process resets the consumer and takes them first.
		t.Logf("SIGTERM %d: exit 0 after %s; ack floor %d → %d", i+1, took.Round(time.Millisecond),
			infoFloor(info), infoFloor(after))
		d.start()
	}
	<-published
	waitDrained(t, js)
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
}
