//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/test/testenv"
)

// publish sends msgs in order and waits for every ack, so the stream order
// is the corpus order.
//
// publish must run on the test's goroutine (it stops the test on an
// error); a background publisher uses publishFromGoroutine.
func publish(t *testing.T, js jetstream.JetStream, msgs []message) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	for _, m := range msgs {
		nm := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{}}
		if m.msgID != "" {
			nm.Header.Set("Nats-Msg-Id", m.msgID)
		}
		f, err := js.PublishMsgAsync(nm)
		// A loaded server (several iocd and the CI's other work) can keep
		// the async window full longer than the client's stall wait: wait
		// for the acks already due, then publish the message again.
		for deadline := time.Now().Add(60 * time.Second); errors.Is(err, jetstream.ErrTooManyStalledMsgs) && time.Now().Before(deadline); {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Second):
			}
			f, err = js.PublishMsgAsync(nm)
		}
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish %d (%s): %v", i, msgs[i].subject, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("publish %d: no ack", i)
		}
	}
}

// waitStream waits until iocd has created IOC_EVENTS (publishers need it).
func waitStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	waitFor(t, 60*time.Second, "IOC_EVENTS stream", func() (bool, string) {
		_, err := js.Stream(context.Background(), "IOC_EVENTS")
		return err == nil, fmt.Sprint(err)
	})
}

// waitDrained waits until the consumer has acknowledged everything.
func waitDrained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	waitFor(t, 120*time.Second, "consumer to acknowledge every message", func() (bool, string) {
		c, err := js.Consumer(context.Background(), "IOC_EVENTS", "iocd")
		if err != nil {
			return false, err.Error()
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.NumPending == 0 && info.NumAckPending == 0,
			fmt.Sprintf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
	})
}

// compareWithTruth polls ClickHouse until it matches the ground truth (the
// last windows become final after the idle timeout) or fails with the diff.
func compareWithTruth(t *testing.T, conn driver.Conn, db string, tr truth, wantDLQ int, js jetstream.JetStream) {
	t.Helper()
	var diff []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		diff = diffWithTruth(conn, db, tr)
		if len(diff) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(diff) > 0 {
		t.Fatalf("ClickHouse differs from the ground truth (%d differences), first ones:\n%s", len(diff),
			strings.Join(diff[:min(len(diff), 25)], "\n"))
	}
	info, err := mustStream(t, js, "IOC_DLQ").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != wantDLQ {
		t.Fatalf("IOC_DLQ holds %d messages, want %d (one per rejected message)", info.State.Msgs, wantDLQ)
	}
}

func mustStream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func diffWithTruth(conn driver.Conn, db string, tr truth) []string {
	ctx := context.Background()
	var diff []string
	// events FINAL: one row per distinct accepted id.
	var rows, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(id) FROM "+db+".events FINAL").Scan(&rows, &ids); err != nil {
		return []string{"events: " + err.Error()}
	}
	if rows != uint64(len(tr.eventIDs)) || ids != uint64(len(tr.eventIDs)) {
		diff = append(diff, fmt.Sprintf("events FINAL: %d rows, %d distinct ids; want %d", rows, ids, len(tr.eventIDs)))
	}
	// rejected FINAL by reason.
	got := map[string]int{}
	rs, err := conn.Query(ctx, "SELECT reason, toInt64(count()) AS n FROM "+db+".rejected FINAL GROUP BY reason")
	if err != nil {
		return append(diff, "rejected: "+err.Error())
	}
	for rs.Next() {
		var reason string
		var n int64
		_ = rs.Scan(&reason, &n)
		got[reason] = int(n)
	}
	rs.Close()
	for _, reason := range sortedKeys(tr.rejected, func(a, b string) bool { return a < b }) {
		if got[reason] != tr.rejected[reason] {
			diff = append(diff, fmt.Sprintf("rejected %s: %d, want %d", reason, got[reason], tr.rejected[reason]))
		}
		delete(got, reason)
	}
	for reason, n := range got {
		diff = append(diff, fmt.Sprintf("rejected %s: %d, want 0", reason, n))
	}
	// window_agg FINAL: every key, every aggregate, all final.
	ws, err := conn.Query(ctx, `SELECT toInt64(toUInt32(window_start)) AS ws, kind, type, metric, area, source,
	count, sum, min, max, first, last, final FROM `+db+`.window_agg FINAL WHERE window_size_s = 60`)
	if err != nil {
		return append(diff, "window_agg: "+err.Error())
	}
	seen := map[windowKey]bool{}
	for ws.Next() {
		var k windowKey
		var a aggregate
		var final uint8
		if err := ws.Scan(&k.start, &k.kind, &k.typ, &k.metric, &k.area, &k.source, &a.count, &a.sum, &a.min, &a.max, &a.first, &a.last, &final); err != nil {
			return append(diff, "window_agg scan: "+err.Error())
		}
		seen[k] = true
		want, ok := tr.windows[k]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("window %+v: unexpected row count=%d", k, a.count))
		case a.count != want.count || !near(a.sum, want.sum) || a.min != want.min || a.max != want.max ||
			a.first != want.first || a.last != want.last:
			diff = append(diff, fmt.Sprintf("window %+v: got count=%d sum=%g min=%g max=%g first=%g last=%g; want count=%d sum=%g min=%g max=%g first=%g last=%g",
				k, a.count, a.sum, a.min, a.max, a.first, a.last, want.count, want.sum, want.min, want.max, want.first, want.last))
		case final != 1:
			diff = append(diff, fmt.Sprintf("window %+v: not final", k))
		}
	}
	ws.Close()
	var missing []string
	for k := range tr.windows {
		if !seen[k] {
			missing = append(missing, fmt.Sprintf("window %+v: missing", k))
		}
	}
	sort.Strings(missing)
	return append(diff, missing...)
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// startPipeline starts nats-server and iocd on a fresh database and waits
// until iocd has created its streams.
func startPipeline(t *testing.T) (string, driver.Conn, *iocd, jetstream.JetStream) {
	t.Helper()
	db, conn := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	return db, conn, d, js
}

func corpusBase() int64 {
	// Three hours ago, on a minute boundary: every event is in the past.
	return time.Now().Add(-3 * time.Hour).Truncate(time.Minute).UnixMilli()
}

// TestPipelineMatchesGroundTruth: a seeded corpus through iocd; ClickHouse
// must hold exactly the ground truth, and SIGTERM must drain and exit 0.
func TestPipelineMatchesGroundTruth(t *testing.T) {
	db, conn, d, js := startPipeline(t)

	msgs := buildCorpus(t, 1, corpusBase(), 250)
	tr := groundTruth(msgs)
	if tr.dropped == 0 || len(tr.rejected) < 10 {
		t.Fatalf("corpus lacks coverage: %d dropped, %d reasons", tr.dropped, len(tr.rejected))
	}
	t.Logf("corpus: %d messages, %d distinct events, %d windows, %d dropped as too late, rejections %v",
		len(msgs), len(tr.eventIDs), len(tr.windows), tr.dropped, tr.rejected)
	publish(t, js, msgs)
	waitDrained(t, js)
	nrej := 0
	for _, n := range tr.rejected {
		nrej += n
	}
	compareWithTruth(t, conn, db, tr, nrej, js)
	checkDeadLetter(t, js, msgs)
	checkEndpoints(t, d.http, tr)

	err, took := d.terminate(30 * time.Second)
	if err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	t.Logf("SIGTERM: exit 0 after %s", took)
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	c, err := js.Consumer(context.Background(), "IOC_EVENTS", "iocd")
	if err != nil {
		return nil
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return nil
	}
	return info
}

func infoFloor(i *jetstream.ConsumerInfo) uint64 {
	if i == nil {
		return 0
	}
	return i.AckFloor.Stream
}

func pendingOf(i *jetstream.ConsumerInfo) uint64 {
	if i == nil {
		return 0
	}
	return i.NumPending
}

func ackPendingOf(i *jetstream.ConsumerInfo) int {
	if i == nil {
		return 0
	}
	return i.NumAckPending
}

// checkDeadLetter reads the first dead letter: the original bytes, and the
// contract's headers pointing back at the original message.
func checkDeadLetter(t *testing.T, js jetstream.JetStream, msgs []message) {
	t.Helper()
	m, err := mustStream(t, js, "IOC_DLQ").GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatalf("read IOC_DLQ: %v", err)
	}
	reason, subject := m.Header.Get("Ioc-Reject-Reason"), m.Header.Get("Ioc-Original-Subject")
	if reason == "" || subject == "" || m.Header.Get("Ioc-Reject-Detail") == "" || m.Header.Get("Ioc-Stream-Seq") == "" {
		t.Fatalf("dead letter headers incomplete: %v", m.Header)
	}
	if !strings.HasPrefix(m.Subject, "ioc.dlq.") {
		t.Fatalf("dead letter subject %s", m.Subject)
	}
	for _, orig := range msgs {
		if orig.subject == subject && bytes.Equal(orig.data, m.Data) {
			if orig.reason != reason {
				t.Fatalf("dead letter reason %s, want %s", reason, orig.reason)
			}
			return
		}
	}
	t.Fatalf("dead letter body is not byte-for-byte one of the published messages on %s", subject)
}

// checkEndpoints: ready, and the metrics count what the ground truth says.
func checkEndpoints(t *testing.T, addr string, tr truth) {
	t.Helper()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	// The data-quality view: every valid event counted once, under its source.
	code, body := get("/api/v1/sources")
	var view struct {
		ConsumerPending float64 `json:"consumerPending"`
		Sources         []struct {
			Source         string  `json:"source"`
			Accepted       uint64  `json:"accepted"`
			Dropped        uint64  `json:"droppedTooLate"`
			Duplicates     uint64  `json:"duplicates"`
			Freshness      float64 `json:"freshnessSeconds"`
			MaxLatenessSec float64 `json:"maxLatenessSeconds"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(body), &view); code != http.StatusOK || err != nil {
		t.Fatalf("/api/v1/sources: %d %v %s", code, err, body)
	}
	var accepted, dropped, duplicates uint64
	late := false
	for _, s := range view.Sources {
		accepted += s.Accepted
		dropped += s.Dropped
		duplicates += s.Duplicates
		late = late || s.MaxLatenessSec > 3600
	}
	// An event beyond the horizon is not remembered, so a repeat of one is
	// counted (and dropped) again: compare what was aggregated exactly.
	if accepted-dropped != uint64(len(tr.eventIDs)-tr.dropped) || dropped < uint64(tr.dropped) || duplicates == 0 || !late ||
		len(view.Sources) != 24 {
		t.Errorf("/api/v1/sources: %d sources, %d accepted − %d dropped (want %d − %d), %d duplicates, lateness beyond 1 h seen: %v",
			len(view.Sources), accepted, dropped, len(tr.eventIDs), tr.dropped, duplicates, late)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`ioc_events_rejected_total{kind="unknown",reason="unknown_kind"} %d`, tr.rejected["unknown_kind"]),
		`ioc_events_late_total{disposition="dropped",kind="environment"}`,
		`ioc_events_duplicate_total{kind="camera"}`,
		`ioc_windows_written_total{final="1"}`,
		`ioc_consumer_pending_messages 0`,
		`ioc_event_lateness_seconds_bucket{le="3600"}`,
		`ioc_source_last_event_timestamp_seconds{kind="environment"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The tables' series exist from the start at 0: this one must have risen.
	if !regexp.MustCompile(`ioc_clickhouse_rows_written_total\{table="window_agg"\} [1-9]`).MatchString(metrics) {
		t.Error("/metrics: no window_agg rows written")
	}
}

// TestLateCopyKeepsTheCountedRow: an event counted once and published
// again (without Nats-Msg-Id) more than the correction horizon later is
// dropped as too late; its raw row must not replace the counted one, or a
// restart would rebuild the windows without the event.
func TestLateCopyKeepsTheCountedRow(t *testing.T) {
	db, conn, d, js := startPipeline(t)
	baseMs := corpusBase()
	mk := func(id string, atMs int64, v float64) message {
		s := sample{id: id, kind: "environment", typ: "water_level", source: "wl-late-copy", area: "kim-long",
			timeMs: atMs, metrics: map[string]float64{"height": v}}
		return message{subject: subjectOf(s), data: encode(s)}
	}
	original := mk("late-copy-1", baseMs+10_000, 1.5)
	msgs := []message{original, mk("late-copy-2", baseMs+20_000, 1.6)}
	for i := 1; i <= 14; i++ { // 70 minutes later, well past the 1 h horizon
		msgs = append(msgs, mk(fmt.Sprintf("late-copy-%d", i+2), baseMs+int64(i)*5*60_000, 1.7))
	}
	publish(t, js, msgs)
	waitDrained(t, js)
	publish(t, js, []message{original}) // the same event again, too late now
	waitDrained(t, js)
	seqOf := func() uint64 {
		var seq uint64
		waitFor(t, 30*time.Second, "the counted row", func() (bool, string) {
			err := conn.QueryRow(context.Background(), "SELECT stream_seq FROM "+db+".events FINAL WHERE id = 'late-copy-1'").Scan(&seq)
			return err == nil, fmt.Sprint(err)
		})
		return seq
	}
	if seq := seqOf(); seq != 1 {
		t.Fatalf("events FINAL holds the late copy (stream seq %d), not the counted event (1)", seq)
	}
	// A restart rebuilds the first window from the stored events: still 2.
	d.kill()
	d.start()
	waitFor(t, 60*time.Second, "iocd ready again", func() (bool, string) { return ready(d.http), "not ready" })
	var count uint64
	waitFor(t, 30*time.Second, "the first window with both events", func() (bool, string) {
		err := conn.QueryRow(context.Background(), "SELECT count FROM "+db+".window_agg FINAL WHERE source = 'wl-late-copy' "+
			"AND metric = 'height' AND toInt64(toUInt32(window_start)) * 1000 = ?", baseMs).Scan(&count)
		return err == nil && count == 2, fmt.Sprintf("count %d, %v", count, err)
	})
}

// publishFromGoroutine publishes one message from a goroutine other than
// the test's: an error fails the test without stopping that goroutine's
// caller, which t.Fatal must not be called from.
func publishFromGoroutine(t *testing.T, js jetstream.JetStream, m message) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, m.subject, m.data, jetstream.WithMsgID(m.msgID)); err != nil {
		t.Errorf("publish %s: %v", m.subject, err)
	}
}

// TestSIGTERMDuringStartUp: a stop asked for while iocd still starts (a
// deploy rolled back, a supervisor stopping a unit while ClickHouse is not
// up yet) is a clean exit, not a failure, wherever in start-up it lands.
func TestSIGTERMDuringStartUp(t *testing.T) {
	nats := startNATS(t)
	db, _ := testDB(t)
	// ClickHouse unreachable: iocd waits for it, in start-up for as long
	// as it takes.
	down := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	d := newIOCD(t, nats.url(), db, "IOC_CLICKHOUSE_ADDR="+down)
	d.start()
	waitFor(t, 20*time.Second, "iocd to wait for ClickHouse", func() (bool, string) {
		b, _ := os.ReadFile(d.logs)
		return strings.Contains(string(b), "ClickHouse not reachable yet"), "no retry logged"
	})
	if err, _ := d.terminate(30 * time.Second); err != nil {
		b, _ := os.ReadFile(d.logs)
		t.Fatalf("SIGTERM while waiting for ClickHouse: %v\n%s", err, b)
	}
	if b, _ := os.ReadFile(d.logs); !strings.Contains(string(b), "stopped by a signal during start-up") {
		t.Fatalf("no start-up stop logged:\n%s", b)
	}
	// Anywhere else in start-up, or just after it.
	for _, delay := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		d := newIOCD(t, nats.url(), db)
		d.start()
		time.Sleep(delay)
		err, took := d.terminate(30 * time.Second)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM {
			err = nil // before Go's handler was installed: the default action, also a clean stop
		}
		if err != nil {
			b, _ := os.ReadFile(d.logs)
			t.Fatalf("SIGTERM %v after start: %v\n%s", delay, err, b)
		}
		t.Logf("SIGTERM %v after start: clean exit after %s", delay, took)
	}
}
