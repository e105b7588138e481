//go:build integration

package benchmarks

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// startAlertmanager runs Debian's Alertmanager with a receiver that
// notifies nobody, and returns its URL.
func (r *rig) startAlertmanager() string {
	r.b.Helper()
	bin := testenv.Alertmanager(r.b)
	dir := filepath.Join(r.dir, "alertmanager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.b.Fatal(err)
	}
	cfg := "route: {receiver: nobody, group_by: [alertname, area]}\nreceivers: [{name: nobody}]\n"
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		r.b.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(r.b))
	p := startProcess(r.b, "alertmanager", filepath.Join(dir, "alertmanager.log"), os.Environ(), bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+url[len("http://"):], "--cluster.listen-address=")
	r.cleanups = append(r.cleanups, func() { _ = p.stop(10 * time.Second) })
	waitFor(r.b, 20*time.Second, "Alertmanager ready", func() (bool, string) {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return url
}

// checkAlertmanager wants iocd to have sent alerts, none failed.
func (r *rig) checkAlertmanager(httpAddr string) {
	r.b.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		r.b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	value := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	sent, failed := value("ioc_alertmanager_alerts_sent_total"), value("ioc_alertmanager_alerts_failed_total")
	if sent <= 0 || failed != 0 {
		r.b.Errorf("Alertmanager bridge: %g alerts sent, %g failed; want some sent, none failed", sent, failed)
	}
	r.b.Logf("Alertmanager bridge: %g alerts sent (re-sends included), %g failed", sent, failed)
}
