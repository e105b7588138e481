//go:build integration

package integration

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
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
	d := newIOCD(t, ns.url(), db, "IOC_HTTP_TOKENS=other-token,"+httpToken, "IOC_NATS_TOKEN="+natsToken,
		"IOC_NATS_PASSWORD="+natsPassword, "IOC_NATS_USER=iocd")
	d.start()
	waitFor(t, 60*time.Second, "iocd ready (the probe is open)", func() (bool, string) { return ready(d.http), "not ready" })
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.http+path, nil)
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
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s (token %q): %d, want %d", c.path, c.token, got, c.want)
		}
	}
	if err, _ := d.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	logs, err := os.ReadFile(d.logs)
	if err != nil || len(logs) == 0 {
		t.Fatalf("no log: %v", err)
	}
	for _, secret := range []string{httpToken, "other-token", natsToken, natsPassword} {
		if strings.Contains(string(logs), secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
}
