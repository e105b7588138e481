package httpapi

import (
	"net/http"
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
