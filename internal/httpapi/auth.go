package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireTokens makes every request carry "Authorization: Bearer <token>"
// with one of tokens; with openProbes, /healthz, /readyz and /metrics stay
// open for orchestrators and Prometheus. No tokens: nothing changes. Call
// it before Serve.
func (s *Server) RequireTokens(tokens []string, openProbes bool) {
	var sums [][32]byte
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			sums = append(sums, sha256.Sum256([]byte(t)))
		}
	}
	if len(sums) == 0 {
		return
	}
	next := s.srv.Handler
	s.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openProbes {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				next.ServeHTTP(w, r)
				return
			}
		}
		if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			// Digests of equal length, compared in constant time and all of
			// them: neither the length nor the position of a match leaks.
			sum := sha256.Sum256([]byte(got))
			match := 0
			for _, want := range sums {
				match |= subtle.ConstantTimeCompare(sum[:], want[:])
			}
			if match == 1 {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="iocd"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token (Authorization: Bearer <token>)"})
	})
}
