//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/broker"
	"github.com/iocstream/iocstream/internal/sim"
)

// alertPosts records, per path (one per replica), the fingerprints posted
// to /<path>/api/v2/alerts. Alertmanager cannot tell who sent an alert,
// so this boundary's real-Alertmanager test is TestAlertmanagerBridge;
// here the question is which replica sends.
type alertPosts struct {
	mu  sync.Mutex
	by  map[string]map[string]int // path → fingerprint → posts
	url string
}

func newAlertPosts(t *testing.T) *alertPosts {
	p := &alertPosts{by: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/api/v2/alerts")
		var batch []struct {
			Labels map[string]string `json:"labels"`
		}
		if !ok || json.NewDecoder(r.Body).Decode(&batch) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.by[path] == nil {
			p.by[path] = map[string]int{}
		}
		for _, a := range batch {
			p.by[path][a.Labels["fingerprint"]]++
		}
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// since returns what was posted since the last call, per path.
func (p *alertPosts) since() map[string]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.by
	p.by = map[string]map[string]int{}
	return out
}

// TestAlertmanagerOwnerOnly: two partitioned replicas, each with its own
// Alertmanager URL. Every firing alert is sent (and re-sent) by the owner
// of its area's partition only; when the owner of Kim Long's partition is
// SIGKILLed, the replica that takes the partition over sends its alerts.
func TestAlertmanagerOwnerOnly(t *testing.T) {
	posts := newAlertPosts(t)
	db, _ := testDB(t)
	ns := startNATS(t)
	procs := map[string]*iocd{}
	for _, name := range []string{"a", "b"} {
		p := newIOCD(t, ns.url(), db, fmt.Sprintf("IOC_PARTITIONS=%d", scaleParts), "IOC_LEASE_TTL="+leaseTTL.String(),
			"IOC_INSTANCE="+name, "IOC_ALERTMANAGER_URL="+posts.url+"/"+name, "IOC_ALERTMANAGER_RESEND=1s")
		p.start()
		procs[name] = p
	}
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	waitFor(t, 60*time.Second, "every lease held, at least 2 by each process", func() (bool, string) {
		h := leaseHolders(t, js)
		per := perInstance(h)
		return len(h) == scaleParts+1 && per["a"] >= 2 && per["b"] >= 2, fmt.Sprint(per)
	})

	start := time.Now().Add(-5 * time.Hour).Truncate(time.Minute)
	gen, err := sim.New(sim.Config{Seed: 7, Start: start, Scenario: sim.ScenarioFlood})
	if err != nil {
		t.Fatal(err)
	}
	var chunk []message
	for gen.NextTime().Before(start.Add(4 * time.Hour)) {
		m := gen.Next()
		chunk = append(chunk, message{subject: m.Subject, data: m.Data, msgID: m.MsgID})
		if len(chunk) == 10_000 {
			publish(t, js, chunk)
			chunk = chunk[:0]
		}
	}
	publish(t, js, chunk)
	waitPartitionsDrained(t, js)

	// What fires now (fingerprint → area). The set still changes after
	// the drain: a source's last panes become final only when it goes
	// idle (IOC_IDLE_TIMEOUT), and a replica that takes a partition over
	// may be the one to decide them. So it is read again at each check.
	currentFiring := func() map[string]string {
		out := map[string]string{}
		for _, a := range lastTransitions(readAlerts(t, js)) {
			if a.Status == "firing" {
				out[a.Fingerprint] = a.Area
			}
		}
		return out
	}
	firing := currentFiring()
	areas := map[string]bool{}
	for _, area := range firing {
		areas[area] = true
	}
	if len(areas) < 3 {
		t.Fatalf("%d alerts firing in %d areas: too few to tell owners apart", len(firing), len(areas))
	}
	owner := func(area string) string {
		return leaseHolders(t, js)[fmt.Sprintf("part.%d.%d", scaleParts, broker.Partition(scaleParts, area))]
	}
	// checkSenders waits two resends and then wants each firing alert
	// posted by want(area) only.
	checkSenders := func(what string, want func(area string) string) {
		t.Helper()
		posts.since()
		waitFor(t, 20*time.Second, what, func() (bool, string) {
			time.Sleep(2500 * time.Millisecond)
			got := posts.since()
			firing := currentFiring()
			if len(firing) == 0 {
				return false, "nothing firing"
			}
			var wrong []string
			for fp, area := range firing {
				w := want(area)
				for path, fps := range got {
					if fps[fp] > 0 && path != w {
						wrong = append(wrong, fmt.Sprintf("%s (%s) sent by %s, owner %s", fp, area, path, w))
					}
				}
				if got[w][fp] == 0 {
					wrong = append(wrong, fmt.Sprintf("%s (%s) not sent by its owner %s", fp, area, w))
				}
			}
			sort.Strings(wrong)
			return len(wrong) == 0, strings.Join(wrong, "; ")
		})
	}
	checkSenders("every firing alert sent by its partition's owner only", owner)
	t.Logf("%d alerts firing in %d areas, each re-sent by its owner only", len(firing), len(areas))

	victim := owner("kim-long")
	survivor := map[string]string{"a": "b", "b": "a"}[victim]
	procs[victim].kill()
	waitFor(t, leaseTTL+15*time.Second, "every lease held by "+survivor, func() (bool, string) {
		per := perInstance(leaseHolders(t, js))
		return per[survivor] == scaleParts+1, fmt.Sprint(per)
	})
	checkSenders("every firing alert sent by "+survivor+" after "+victim+" is SIGKILLed", func(string) string { return survivor })
	t.Logf("SIGKILL %s: %s took its partitions over and sends their alerts", victim, survivor)
}
