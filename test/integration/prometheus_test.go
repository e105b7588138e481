//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestPrometheusSeesClickHouseOutage: a real Prometheus scrapes a real
// iocd with the shipped rules. ClickHouse stops while events arrive: the
// write-errors alert fires in Prometheus; ClickHouse comes back: it
// resolves. The rules are the shipped ones with their windows and `for`
// shortened (5 m → 20 s, 2 m → 5 s), so the test takes a minute, not ten.
func TestPrometheusSeesClickHouseOutage(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: make test-monitoring installs Debian's package")
	}
	ch := startPrivateClickHouse(t)
	db, _ := testDBAt(t, ch.addr())
	ns := startNATS(t)
	d := newIOCD(t, ns.url(), db, "IOC_CLICKHOUSE_ADDR="+ch.addr())
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)

	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deployments", "prometheus", "rules", "iocstream.yml"))
	if err != nil {
		t.Fatal(err)
	}
	short := strings.NewReplacer("[5m]", "[20s]", "for: 2m", "for: 5s").Replace(string(rules))
	if err := os.WriteFile(filepath.Join(dir, "iocstream.yml"), []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: iocd
    static_configs: [{targets: [%q]}]
`, filepath.Join(dir, "iocstream.yml"), d.http)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		_ = prom.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			lines := strings.Split(string(b), "\n")
			t.Logf("prometheus log tail:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	alertState := func(name string) string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/alerts", port))
		if err != nil {
			return "prometheus not up: " + err.Error()
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string
					State  string
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return err.Error()
		}
		for _, a := range out.Data.Alerts {
			if a.Labels["alertname"] == name && a.Labels["table"] == "events" {
				return a.State
			}
		}
		return "inactive"
	}
	waitFor(t, 30*time.Second, "Prometheus to scrape iocd", func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=up", port))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var out struct {
			Data struct{ Result []struct{ Value []any } }
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return len(out.Data.Result) == 1 && fmt.Sprint(out.Data.Result[0].Value[1]) == "1", fmt.Sprintf("%+v", out.Data.Result)
	})

	// A trickle of readings, so that there is always something to write.
	var n atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			i := n.Add(1)
			s := sample{id: fmt.Sprintf("prom-%d", i), kind: "environment", typ: "air_quality", source: "aq-prom",
				area: "phu-bai", timeMs: time.Now().UnixMilli(), metrics: map[string]float64{"pm25": 20}}
			publishFromGoroutine(t, js, message{subject: subjectOf(s), data: encode(s), msgID: s.id})
		}
	}()
	defer func() { close(stop); <-done }()

	if s := alertState("IocClickHouseWriteErrors"); s != "inactive" {
		t.Fatalf("IocClickHouseWriteErrors is %s before any outage", s)
	}
	ch.run("stop")
	stopped := time.Now()
	waitFor(t, 90*time.Second, "IocClickHouseWriteErrors to fire in Prometheus", func() (bool, string) {
		s := alertState("IocClickHouseWriteErrors")
		return s == "firing", s
	})
	t.Logf("IocClickHouseWriteErrors firing %s after ClickHouse stopped", time.Since(stopped).Round(time.Second))
	ch.run("start")
	started := time.Now()
	waitFor(t, 120*time.Second, "IocClickHouseWriteErrors to resolve", func() (bool, string) {
		s := alertState("IocClickHouseWriteErrors")
		return s == "inactive", s
	})
	t.Logf("resolved %s after ClickHouse came back", time.Since(started).Round(time.Second))
}
