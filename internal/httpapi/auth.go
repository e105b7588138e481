package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Role is what an API identity may do (CONTRACT.md section 8).
type Role int

// Roles, each allowed what the one before is and more.
const (
	RoleViewer   Role = iota + 1 // read everything
	RoleOperator                 // also act on alerts and silences
	RoleAdmin                    // also reload rules
)

var roleNames = map[string]Role{"viewer": RoleViewer, "operator": RoleOperator, "admin": RoleAdmin}

func (r Role) String() string {
	for name, role := range roleNames {
		if role == r {
			return name
		}
	}
	return "none"
}

// Identity is who makes a request: the name and role of its token.
type Identity struct {
	Name string
	Role Role
}

// bareName is the identity of a token given without name and role.
const bareName = "api"

type credential struct {
	sum [32]byte
	id  Identity
}

var (
	entryRE   = regexp.MustCompile(`^([A-Za-z0-9._@-]{1,64}):([a-z]+)=(.+)$`)
	lookingRE = regexp.MustCompile(`^[^:=]*:[a-z]*=`) // shaped like name:role=… but not a valid one
)

// parseTokens reads IOC_HTTP_TOKENS entries: name:role=token, or a bare
// token (an operator named "api", as before identities existed). Errors
// name the entry by position, never by its text: it holds a secret.
func parseTokens(entries []string) ([]credential, error) {
	var out []credential
	seen := map[[32]byte]bool{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		c := credential{id: Identity{Name: bareName, Role: RoleOperator}}
		token := e
		if m := entryRE.FindStringSubmatch(e); m != nil {
			role, ok := roleNames[m[2]]
			if !ok {
				return nil, fmt.Errorf("IOC_HTTP_TOKENS entry %d: role %q is not viewer, operator or admin", i+1, m[2])
			}
			c.id, token = Identity{Name: m[1], Role: role}, m[3]
		} else if lookingRE.MatchString(e) {
			return nil, fmt.Errorf("IOC_HTTP_TOKENS entry %d: write name:role=token, the name of letters, digits and . _ @ -, "+
				"the role viewer, operator or admin", i+1)
		}
		c.sum = sha256.Sum256([]byte(token))
		if seen[c.sum] {
			return nil, fmt.Errorf("IOC_HTTP_TOKENS entry %d: the same token is given twice", i+1)
		}
		seen[c.sum] = true
		out = append(out, c)
	}
	return out, nil
}

// CheckTokens reports a malformed IOC_HTTP_TOKENS entry, so that iocd
// refuses it at start-up, before any work.
func CheckTokens(entries []string) error {
	_, err := parseTokens(entries)
	return err
}

type identityKey struct{}

// identity is the request's identity; ok is false when the API is open
// (no tokens), where the actor is whoever the body names.
func identity(r *http.Request) (Identity, bool) {
	id, ok := r.Context().Value(identityKey{}).(Identity)
	return id, ok
}

// RequireTokens makes every request carry "Authorization: Bearer <token>"
// with one of the IOC_HTTP_TOKENS entries; the token's name and role are
// then who acts. With openProbes, /healthz, /readyz and /metrics stay open
// for orchestrators and Prometheus. No tokens: nothing changes. Call it
// before Serve; a malformed entry is an error.
func (s *Server) RequireTokens(tokens []string, openProbes bool) error {
	creds, err := parseTokens(tokens)
	if err != nil || len(creds) == 0 {
		return err
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
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/assets/") {
			// The console's page and assets hold no data; the page asks
			// for a token and sends it with every API call.
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && r.URL.Path == "/api/v1/alerts/stream" {
			// A browser's EventSource cannot set headers: the stream alone
			// takes the token as a query parameter.
			got = r.URL.Query().Get("access_token")
			ok = got != ""
		}
		if ok {
			// Digests of equal length, compared in constant time and all of
			// them: neither the length nor the position of a match leaks.
			sum := sha256.Sum256([]byte(got))
			found := -1
			for i := range creds {
				if subtle.ConstantTimeCompare(sum[:], creds[i].sum[:]) == 1 {
					found = i
				}
			}
			if found >= 0 {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, creds[found].id)))
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="iocd"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token (Authorization: Bearer <token>)"})
	})
	return nil
}

// whoami serves GET /api/v1/whoami: who the token is, so the console shows
// the actions the role may take.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id, ok := identity(r)
	if !ok {
		id = Identity{Name: "anonymous", Role: RoleAdmin}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": id.Name, "role": id.Role.String(), "auth": ok})
}

// actor is who performs an action: the token's name, or with the API open
// the body's by (default "anonymous"). It writes 403 and returns false
// when the identity may not act.
func actor(w http.ResponseWriter, r *http.Request, by string, need Role) (Identity, bool) {
	id, ok := identity(r)
	if !ok {
		if by = strings.TrimSpace(by); by == "" {
			by = "anonymous"
		}
		return Identity{Name: by, Role: RoleAdmin}, true
	}
	if id.Role < need {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": fmt.Sprintf("%s is a %s: acting needs the role %s", id.Name, id.Role, need)})
		return id, false
	}
	return id, true
}
