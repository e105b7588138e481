//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestFaultNATSClusterNodeDies: three nats-server processes form a JetStream
// cluster on loopback ports, iocd creates R3 streams, and the node leading
// IOC_EVENTS is killed during load. ClickHouse must still hold exactly
// the ground truth.
func TestFaultNATSClusterNodeDies(t *testing.T) {
	faultSeed(t)
	clusterPorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var nodes []*natsServer
	var urls []string
	for i, cp := range clusterPorts {
		n := startNATSWith(t, nil, "-n", fmt.Sprintf("ioc-n%d", i+1), "--cluster_name", "ioc",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", cp), "--routes", strings.Join(routes, ","))
		nodes = append(nodes, n)
		urls = append(urls, n.url())
	}
	all := strings.Join(urls, ",")
	_, js := connectJS(t, all)
	waitFor(t, 60*time.Second, "the JetStream cluster to elect its leader", func() (bool, string) {
		_, err := js.AccountInfo(context.Background())
		return err == nil, fmt.Sprint(err)
	})

	db, conn := testDB(t)
	d := newIOCD(t, all, db, "IOC_STREAM_REPLICAS=3")
	d.start()
	waitStream(t, js)
	info, err := mustStream(t, js, "IOC_EVENTS").Info(context.Background())
	if err != nil || info.Config.Replicas != 3 {
		t.Fatalf("IOC_EVENTS: %v, replicas %d, want 3", err, info.Config.Replicas)
	}

	msgs := buildCorpus(t, 8, corpusBase(), 300)
	published := publishSlowly(t, js, msgs, 200, 150*time.Millisecond)
	time.Sleep(2 * time.Second)
	info, err = mustStream(t, js, "IOC_EVENTS").Info(context.Background())
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	leader := info.Cluster.Leader
	for i, n := range nodes {
		if fmt.Sprintf("ioc-n%d", i+1) == leader {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
			n.cmd = nil
			t.Logf("killed %s, the leader of IOC_EVENTS, during load", leader)
		}
	}
	<-published
	waitDrained(t, js)
	tr := truthFromStream(t, js, msgs)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	checkAlertInvariants(t, js, conn, db)
	after, _ := mustStream(t, js, "IOC_EVENTS").Info(context.Background())
	if after != nil && after.Cluster != nil {
		t.Logf("IOC_EVENTS now led by %s", after.Cluster.Leader)
	}
}
