//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestHTTPTokenAndNoSecretInLogs: with IOC_HTTP_TOKENS the API needs a
// bearer token (the probes stay open), and no secret given to iocd ever
// appears in its log.
func TestHTTPTokenAndNoSecretInLogs(t *testing.T) {
	db, _ := testDB(t)
	ns := startNATS(t)
	const httpToken, natsToken, natsPassword = "http-tok-8c1f3e", "nats-tok-77aa01", "nats-pw-19be42"
	// The NATS server here has no auth: it ignores the credentials, but
	// iocd still holds them and must not print them.
	const viewerToken = "view-tok-5512aa"
	d := newIOCD(t, ns.url(), db, "IOC_HTTP_TOKENS=other-token,lan:operator="+httpToken+",minh:viewer="+viewerToken, "IOC_NATS_TOKEN="+natsToken,
		"IOC_NATS_PASSWORD="+natsPassword, "IOC_NATS_USER=iocd")
	d.start()
	waitFor(t, 60*time.Second, "iocd ready (the probe is open)", func() (bool, string) { return ready(d.http), "not ready" })
	do := func(method, path, token string) int {
		req, _ := http.NewRequest(method, "http://"+d.http+path, strings.NewReader(`{}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(path, token string) int { return do(http.MethodGet, path, token) }
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/alerts", "", http.StatusUnauthorized},
		{"/api/v1/alerts", "nope", http.StatusUnauthorized},
		{"/api/v1/alerts", httpToken, http.StatusOK},
		{"/api/v1/sources", "", http.StatusUnauthorized},
		{"/api/v1/sources", httpToken, http.StatusOK},
		{"/metrics", "", http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/api/v1/alerts", viewerToken, http.StatusOK},
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s (token %q): %d, want %d", c.path, c.token, got, c.want)
		}
	}
	// A viewer may not act; an operator may (here on no firing alert: 404).
	post := func(token string) int { return do(http.MethodPost, "/api/v1/alerts/0123456789abcdef/ack", token) }
	if got := post(viewerToken); got != http.StatusForbidden {
		t.Errorf("a viewer's acknowledgement: %d, want 403", got)
	}
	if got := post(httpToken); got != http.StatusNotFound {
		t.Errorf("an operator's acknowledgement of no firing alert: %d, want 404", got)
	}
	if err, _ := d.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	logs, err := os.ReadFile(d.logs)
	if err != nil || len(logs) == 0 {
		t.Fatalf("no log: %v", err)
	}
	for _, secret := range []string{httpToken, "other-token", viewerToken, natsToken, natsPassword} {
		if strings.Contains(string(logs), secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
}

// TestMalformedTokenEntryRefused: a malformed IOC_HTTP_TOKENS entry stops
// iocd at start-up with a clear error that does not show the secret.
func TestMalformedTokenEntryRefused(t *testing.T) {
	db, _ := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_HTTP_TOKENS=good-token,lan:boss=secret-tok-9a71")
	d.start()
	select {
	case err := <-d.done:
		d.cmd = nil
		logs, _ := os.ReadFile(d.logs)
		if err == nil || !strings.Contains(string(logs), "IOC_HTTP_TOKENS entry 2") || strings.Contains(string(logs), "secret-tok-9a71") {
			t.Fatalf("exit %v; log:\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("iocd started with a malformed token entry")
	}
}

// TestNATSLeastPrivilege runs nats-server with deployments/nats/iocstream.conf:
// iocd works as the iocd user; a publisher can publish events and nothing
// else; a viewer can read alerts and publish nothing.
func TestNATSLeastPrivilege(t *testing.T) {
	conf := filepath.Join(testenv.RepoRoot(t), "deployments", "nats", "iocstream.conf")
	ns := startNATSWith(t, []string{"IOCD_PASSWORD=iocd-pw-1", "PUBLISHER_PASSWORD=pub-pw-2", "VIEWER_PASSWORD=view-pw-3"}, "-c", conf)
	db, conn := testDB(t)
	d := newIOCD(t, ns.url(), db, "IOC_NATS_USER=iocd", "IOC_NATS_PASSWORD=iocd-pw-1")
	d.start()
	_, admin := connectJS(t, ns.url(), nats.UserInfo("iocd", "iocd-pw-1"))
	waitStream(t, admin)
	waitFor(t, 60*time.Second, "iocd ready", func() (bool, string) { return ready(d.http), "not ready" })

	// A viewer subscribes to alerts before anything happens.
	viewer, err := nats.Connect(ns.url(), nats.UserInfo("viewer", "view-pw-3"))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	alerts := make(chan *nats.Msg, 1024)
	if _, err := viewer.ChanSubscribe("ioc.alerts.>", alerts); err != nil {
		t.Fatal(err)
	}

	_, pub := connectJS(t, ns.url(), nats.UserInfo("publisher", "pub-pw-2"))
	msgs := buildCorpus(t, 6, corpusBase(), 120)
	tr := groundTruth(msgs)
	publish(t, pub, msgs)
	waitDrained(t, admin)
	waitEventsStored(t, conn, db, len(tr.eventIDs))
	info, err := mustStream(t, admin, "IOC_DLQ").Info(context.Background())
	if err != nil || info.State.Msgs != uint64(countRejected(tr)) {
		t.Fatalf("IOC_DLQ: %v, %d messages, want %d", err, info.State.Msgs, countRejected(tr))
	}

	// What each account must not do.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := pub.Publish(ctx, "ioc.alerts.critical.camera.phu-hoi", []byte(`{"forged":true}`)); err == nil {
		t.Error("a publisher could publish an alert")
	}
	if _, err := pub.Publish(ctx, "ioc.dlq.camera", []byte(`{}`)); err == nil {
		t.Error("a publisher could publish a dead letter")
	}
	if _, err := pub.CreateOrUpdateConsumer(ctx, "IOC_EVENTS", jetstream.ConsumerConfig{Durable: "thief"}); err == nil {
		t.Error("a publisher could create a consumer on IOC_EVENTS")
	}
	_, vjs := connectJS(t, ns.url(), nats.UserInfo("viewer", "view-pw-3"))
	if _, err := vjs.Publish(ctx, "ioc.events.camera.phu-hoi.cam-1", []byte(`{}`)); err == nil {
		t.Error("a viewer could publish an event")
	}
	alertInfo, err := mustStream(t, admin, "IOC_ALERTS").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Every alert stored is iocd's: the forged one is not among them.
	if got := len(alerts); uint64(got) < alertInfo.State.Msgs {
		t.Logf("viewer saw %d of %d alerts so far", got, alertInfo.State.Msgs)
	}
	for len(alerts) > 0 {
		if m := <-alerts; strings.Contains(string(m.Data), "forged") {
			t.Fatal("the viewer received a forged alert")
		}
	}
	// A restart reads IOC_ALERTS back with the same permissions.
	if err, _ := d.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	d.start()
	waitFor(t, 60*time.Second, "iocd ready again", func() (bool, string) { return ready(d.http), "not ready" })
	logs, _ := os.ReadFile(d.logs)
	if alertInfo.State.Msgs == 0 || !strings.Contains(string(logs), `"alerts_known":`) {
		t.Errorf("the restart did not read %d alerts back", alertInfo.State.Msgs)
	}
	if strings.Contains(strings.ToLower(string(logs)), "permissions violation") {
		t.Fatal("iocd hit a permissions violation with the shipped permissions")
	}
}

// TestClickHouseLeastPrivilege: a ClickHouse user made by
// deployments/clickhouse/iocd-user.sh runs iocd (migrations, inserts,
// restore queries) and can reach nothing but its database.
func TestClickHouseLeastPrivilege(t *testing.T) {
	const password = "ch-pw-5d2e91"
	users := t.TempDir()
	render := exec.Command(filepath.Join(testenv.RepoRoot(t), "deployments", "clickhouse", "iocd-user.sh"))
	render.Env = append(os.Environ(), "IOC_CLICKHOUSE_PASSWORD="+password, "IOC_CLICKHOUSE_DATABASE=ioc")
	xml, err := render.Output()
	if err != nil {
		t.Fatalf("iocd-user.sh: %v", err)
	}
	if strings.Contains(string(xml), password) {
		t.Fatal("the users file holds the password in clear")
	}
	if err := os.WriteFile(filepath.Join(users, "iocd.xml"), xml, 0o600); err != nil {
		t.Fatal(err)
	}
	ch := startPrivateClickHouse(t, "CH_USERS_D="+users)
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS ioc", "CREATE DATABASE IF NOT EXISTS other",
		"CREATE TABLE IF NOT EXISTS other.secret (x UInt8) ENGINE = Memory"} {
		if err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	ns := startNATS(t)
	d := newIOCD(t, ns.url(), "ioc", "IOC_CLICKHOUSE_ADDR="+ch.addr(), "IOC_CLICKHOUSE_USER=iocd", "IOC_CLICKHOUSE_PASSWORD="+password)
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	msgs := buildCorpus(t, 7, corpusBase(), 120)
	tr := groundTruth(msgs)
	publish(t, js, msgs)
	waitDrained(t, js)
	var events uint64
	waitFor(t, 30*time.Second, "every event stored by the restricted user", func() (bool, string) {
		_ = admin.QueryRow(ctx, "SELECT count() FROM ioc.events FINAL").Scan(&events)
		return events == uint64(len(tr.eventIDs)), fmt.Sprintf("%d of %d", events, len(tr.eventIDs))
	})
	// A restart runs the restore queries as the same user.
	if err, _ := d.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	d.start()
	waitFor(t, 60*time.Second, "iocd ready again", func() (bool, string) { return ready(d.http), "not ready" })

	user, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.addr()},
		Auth: clickhouse.Auth{Database: "ioc", Username: "iocd", Password: password}})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	if err := user.Exec(ctx, "SELECT count() FROM ioc.events"); err != nil {
		t.Fatalf("iocd cannot read its own table: %v", err)
	}
	var n uint64
	if err := user.QueryRow(ctx, "SELECT count() FROM other.secret").Scan(&n); err == nil {
		t.Error("the iocd user can read another database")
	}
	if err := user.Exec(ctx, "DROP DATABASE other"); err == nil {
		t.Error("the iocd user can drop another database")
	}
	wrong, _ := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.addr()},
		Auth: clickhouse.Auth{Database: "ioc", Username: "iocd", Password: "wrong"}})
	if err := wrong.Ping(ctx); err == nil {
		t.Error("a wrong password was accepted")
	}
	wrong.Close()
}

// TestNATSLeastPrivilegePartitioned: two partitioned iocd processes run
// with the shipped iocd user (leases, partition consumers, the transform,
// the alert board, acknowledgements) and produce the ground truth; one is
// SIGKILLed and its partitions are taken over with the same permissions.
func TestNATSLeastPrivilegePartitioned(t *testing.T) {
	conf := filepath.Join(testenv.RepoRoot(t), "deployments", "nats", "iocstream.conf")
	ns := startNATSWith(t, []string{"IOCD_PASSWORD=iocd-pw-1", "PUBLISHER_PASSWORD=pub-pw-2", "VIEWER_PASSWORD=view-pw-3"}, "-c", conf)
	db, conn := testDB(t)
	var procs []*iocd
	for _, name := range []string{"a", "b"} {
		d := newIOCD(t, ns.url(), db, "IOC_NATS_USER=iocd", "IOC_NATS_PASSWORD=iocd-pw-1",
			fmt.Sprintf("IOC_PARTITIONS=%d", scaleParts), "IOC_LEASE_TTL="+leaseTTL.String(), "IOC_INSTANCE="+name)
		d.start()
		procs = append(procs, d)
	}
	_, admin := connectJS(t, ns.url(), nats.UserInfo("iocd", "iocd-pw-1"))
	waitStream(t, admin)
	for _, d := range procs {
		waitFor(t, 60*time.Second, "iocd ready", func() (bool, string) { return ready(d.http), "not ready" })
	}
	_, pub := connectJS(t, ns.url(), nats.UserInfo("publisher", "pub-pw-2"))
	msgs := buildCorpusOf(t, 7, corpusBase(), 200, devicesIn(scaleAreas))
	published := publishSlowly(t, pub, msgs, 100, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	procs[0].kill()
	<-published
	waitPartitionsDrained(t, admin)
	tr := groundTruth(msgs) // no NATS fault: stored in the order built (and iocd may not read IOC_EVENTS messages directly)
	compareWithTruth(t, conn, db, tr, countRejected(tr), admin)
	// An acknowledgement through the survivor's API reaches the engine
	// owning the alert, whichever process that is, and comes back as a
	// transition (seen here by a viewer).
	viewer, err := nats.Connect(ns.url(), nats.UserInfo("viewer", "view-pw-3"))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	transitions := make(chan *nats.Msg, 1024)
	if _, err := viewer.ChanSubscribe("ioc.alerts.>", transitions); err != nil {
		t.Fatal(err)
	}
	var firing []storedAlert
	waitFor(t, 10*time.Second, "a firing alert on the survivor's /api/v1/alerts", func() (bool, string) {
		firing = liveAlerts(t, procs[1].http)
		return len(firing) > 0, "none: the corpus should fire river_rising_fast"
	})
	a := firing[0]
	resp, err := http.Post("http://"+procs[1].http+"/api/v1/alerts/"+a.Fingerprint+"/ack", "application/json",
		strings.NewReader(`{"by":"operator-1","comment":"seen"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 30*time.Second, "the acknowledgement published", func() (bool, string) {
		for {
			select {
			case m := <-transitions:
				var s storedAlert
				if json.Unmarshal(m.Data, &s) == nil && s.ID == a.ID && s.AcknowledgedBy == "operator-1" {
					return true, ""
				}
			default:
				return false, "not yet on ioc.alerts.>"
			}
		}
	})
	for _, d := range procs {
		logs, _ := os.ReadFile(d.logs)
		if strings.Contains(strings.ToLower(string(logs)), "permissions violation") {
			t.Fatal("partitioned iocd hit a permissions violation with the shipped permissions")
		}
	}
}

// waitEventsStored waits until the events table holds want distinct events.
func waitEventsStored(t *testing.T, conn driver.Conn, db string, want int) uint64 {
	t.Helper()
	var events uint64
	waitFor(t, 30*time.Second, "every event stored", func() (bool, string) {
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".events FINAL").Scan(&events)
		return events == uint64(want), fmt.Sprintf("%d of %d", events, want)
	})
	return events
}
