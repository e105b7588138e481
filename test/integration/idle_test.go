//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestIdleDecisionReachesTable: a threshold decision taken while no events
// arrive (the last pane is finalised by the idle timeout, after every event
// was acknowledged) is published, and written to the alerts table by the
// next flush, without waiting for another event.
func TestIdleDecisionReachesTable(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: idle_high_water
    kind: threshold
    match: {kind: environment, type: water_level, metric: height}
    window: 1m
    agg: max
    op: ">="
    threshold: 1.0
    severity: warning
    group_by: [source]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	const flush = 300 * time.Millisecond
	db, conn := testDB(t)
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_RULES="+rules, "IOC_FLUSH_INTERVAL="+flush.String(), "IOC_IDLE_TIMEOUT=3s")
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	// A few readings in the current minute, above the threshold: the pane
	// stays open until the source has been idle for 3 s.
	now := time.Now()
	var msgs []message
	for i := range 3 {
		s := sample{id: fmt.Sprintf("idle-%d", i), kind: "environment", typ: "water_level", source: "wl-idle",
			area: "kim-long", timeMs: now.Add(-time.Duration(3-i) * time.Second).UnixMilli(),
			metrics: map[string]float64{"height": 1.5}}
		msgs = append(msgs, message{subject: subjectOf(s), data: encode(s), msgID: s.id})
	}
	publish(t, js, msgs)
	waitDrained(t, js)
	var published time.Time
	waitFor(t, 30*time.Second, "the idle-timeout decision on IOC_ALERTS", func() (bool, string) {
		got := ofRule(readAlerts(t, js), "idle_high_water")
		published = time.Now()
		return len(got) == 1 && got[0].Status == "firing", fmt.Sprintf("%d transitions", len(got))
	})
	waitFor(t, 10*time.Second, "the decision in the alerts table", func() (bool, string) {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".alerts FINAL WHERE rule = 'idle_high_water'").Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("%d rows, %v", n, err)
	})
	t.Logf("in the alerts table %s after it was seen on IOC_ALERTS (flush interval %s)",
		time.Since(published).Round(time.Millisecond), flush)
	checkAlertInvariants(t, js, conn, db)
}
