package httpapi

import (
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/iocstream/iocstream/internal/alert"
)

func TestRequireTokens(t *testing.T) {
	for _, open := range []bool{true, false} {
		s := startServerWith(t, alert.NewBoard(), func(s *Server) { s.RequireTokens([]string{"old-token", " new-token "}, open) })
		tests := []struct {
			path, auth string
			want       int
		}{
			{"/api/v1/alerts", "", http.StatusUnauthorized},
			{"/api/v1/alerts", "Bearer wrong", http.StatusUnauthorized},
			{"/api/v1/alerts", "Bearer new-token-and-more", http.StatusUnauthorized},
			{"/api/v1/alerts", "Basic bmV3LXRva2Vu", http.StatusUnauthorized},
			{"/api/v1/alerts", "Bearer new-token", http.StatusOK},
			{"/api/v1/alerts", "Bearer old-token", http.StatusOK},
			{"/healthz", "", map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[open]},
			{"/metrics", "", map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[open]},
			{"/metrics", "Bearer old-token", http.StatusOK},
		}
		for _, tt := range tests {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("open probes %v: GET %s with %q: %d, want %d", open, tt.path, tt.auth, resp.StatusCode, tt.want)
			}
			if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		}
	}
}

// TestRoles: with tokens, the actor is the token's name whatever the body
// says; a viewer may read but not act (403); a bare token is an operator
// named api.
func TestRoles(t *testing.T) {
	b := &ackBoard{Board: alert.NewBoard()}
	b.Apply(testAlert("fp1", 1, alert.StatusFiring, alert.Warning))
	s := startServerWith(t, b, func(s *Server) {
		if err := s.RequireTokens([]string{"lan:operator=tok-op", "minh:viewer=tok-view", "root:admin=tok-admin", "tok-bare"}, true); err != nil {
			t.Fatal(err)
		}
	})
	do := func(method, path, token, body string) int {
		req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
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
	ack := "/api/v1/alerts/fp1/ack"
	for _, tt := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/api/v1/alerts", "tok-view", "", http.StatusOK},
		{"POST", ack, "tok-view", `{"comment": "x"}`, http.StatusForbidden},
		{"POST", ack, "tok-op", `{"by": "someone else", "comment": "đã báo"}`, http.StatusAccepted},
		{"POST", ack, "tok-admin", `{}`, http.StatusAccepted},
		{"POST", ack, "tok-bare", ``, http.StatusAccepted},
		{"POST", ack, "tok-wrong", `{}`, http.StatusUnauthorized},
		{"POST", ack, "", `{}`, http.StatusUnauthorized},
		{"GET", "/", "", "", http.StatusOK},               // the console's page asks for a token
		{"GET", "/assets/app.css", "", "", http.StatusOK}, // and holds no data
		{"GET", "/api/v1/whoami", "", "", http.StatusUnauthorized},
		{"GET", "/api/v1/whoami", "tok-view", "", http.StatusOK},
		{"GET", "/api/v1/alerts?access_token=tok-view", "", "", http.StatusUnauthorized}, // the stream only
		{"GET", "/api/v1/alerts/stream?access_token=tok-wrong", "", "", http.StatusUnauthorized},
	} {
		if got := do(tt.method, tt.path, tt.token, tt.body); got != tt.want {
			t.Errorf("%s %s with %q: %d, want %d", tt.method, tt.path, tt.token, got, tt.want)
		}
	}
	// A browser's EventSource sends the token in the URL.
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/alerts/stream?access_token=tok-view")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream with access_token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for token, want := range map[string]string{"tok-view": `{"auth":true,"name":"minh","role":"viewer"}`,
		"tok-bare": `{"auth":true,"name":"api","role":"operator"}`} {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != want {
			t.Errorf("whoami with %s: %s, want %s", token, body, want)
		}
	}
	want := []string{"fp1|lan|đã báo", "fp1|root|", "fp1|api|"}
	if strings.Join(b.acks, ",") != strings.Join(want, ",") {
		t.Fatalf("acknowledgements by %q, want %q", b.acks, want)
	}
}

func TestParseTokens(t *testing.T) {
	creds, err := parseTokens([]string{"lan:operator=s3cr:et=x", " bare ", "", "ops.team@hue:viewer=v"})
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 3 || creds[0].id != (Identity{"lan", RoleOperator}) || creds[0].sum != sha256.Sum256([]byte("s3cr:et=x")) ||
		creds[1].id != (Identity{"api", RoleOperator}) || creds[2].id != (Identity{"ops.team@hue", RoleViewer}) {
		t.Fatalf("parsed %+v", creds)
	}
	for _, bad := range [][]string{{"lan:boss=hunter2"}, {"lan viên:operator=hunter2"}, {"a=1", "a=1"}, {":operator=hunter2"}} {
		_, err := parseTokens(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}
