package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func file(t *testing.T, name string) string {
	t.Helper()
	b, err := web.ReadFile("web/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		method, path string
		code         int
		ctype        string
		contains     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<meta charset="utf-8">`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/assets/app.js", 200, "text/javascript; charset=utf-8", "const I18N = {"},
		{"GET", "/assets/app.css", 200, "text/css; charset=utf-8", "--critical: #d32f2f"},
		{"GET", "/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/assets/nope.js", 404, "", ""},
		{"GET", "/assets/index.html", 404, "", ""},
		{"GET", "/assets/", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/api/v1/alerts", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := get(t, h, tc.method, tc.path, nil)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			// Security headers go on every answer, errors included.
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'",
				"connect-src 'self'", "img-src 'self' data:", "object-src 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "http") {
				t.Errorf("CSP %q is not strict", csp)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tc.code != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
		})
	}
}

func TestRevalidation(t *testing.T) {
	h := Handler()
	resp, _ := get(t, h, "GET", "/assets/app.js", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, body := get(t, h, "GET", "/assets/app.js", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
	}
}

// TestIndexReferences: the page works on a closed network only if it loads
// nothing from elsewhere, and under the CSP only if it has no inline code.
func TestIndexReferences(t *testing.T) {
	h := Handler()
	index := file(t, "index.html")
	refs := regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("only %d references in index.html", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "#/"):
		case strings.HasPrefix(ref, "/assets/"):
			if resp, _ := get(t, h, "GET", ref, nil); resp.StatusCode != 200 {
				t.Errorf("index.html references %s, served %d", ref, resp.StatusCode)
			}
		default:
			t.Errorf("index.html references %q: only /assets/ and #/ routes are allowed", ref)
		}
	}
	checks := []struct {
		file string
		re   string
		why  string
	}{
		{"index.html", `(?i)<script(?:\s[^>]*)?>`, "script"},
		{"index.html", `(?i)\son[a-z]+\s*=`, "inline event handler"},
		{"index.html", `(?i)\sstyle\s*=`, "inline style"},
		{"index.html", `(?i)<style`, "style element"},
		{"app.js", `\beval\s*\(|new\s+Function\b|setTimeout\(\s*['"]`, "code from strings"},
		{"app.js", `\sstyle\s*=\s*\\?["']|\son[a-z]+\s*=\s*\\?["']`, "inline style or handler in markup"},
		{"app.js", `document\.write|outerHTML`, "an HTML sink other than setHTML/addHTML"},
	}
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		if m := regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/`).FindString(file(t, name)); m != "" {
			t.Errorf("%s has an external URL %q", name, m)
		}
	}
	for _, c := range checks {
		for _, m := range regexp.MustCompile(c.re).FindAllString(file(t, c.file), -1) {
			if c.why == "script" && strings.Contains(m, `src="/assets/app.js"`) {
				continue
			}
			t.Errorf("%s: %s: %q", c.file, c.why, m)
		}
	}
	// Exactly one place turns strings into DOM, through esc().
	js := file(t, "app.js")
	if n := strings.Count(js, ".innerHTML"); n != 1 {
		t.Errorf("app.js uses .innerHTML %d times, want 1 (setHTML)", n)
	}
	if n := strings.Count(js, "insertAdjacentHTML"); n != 1 {
		t.Errorf("app.js uses insertAdjacentHTML %d times, want 1 (addHTML)", n)
	}
	if !strings.Contains(index, `<html lang="vi">`) || !strings.Contains(index, `<meta charset="utf-8">`) {
		t.Error("index.html must be Vietnamese by default and declare utf-8")
	}
}

var (
	i18nBlock = regexp.MustCompile(`(?s)\nconst I18N = \{\n  vi: \{\n(.*?)\n  \},\n  en: \{\n(.*?)\n  \},\n\};`)
	i18nKey   = regexp.MustCompile(`(?m)^    ([A-Za-z0-9_]+): `)
	i18nUse   = []*regexp.Regexp{
		regexp.MustCompile(`\b[tik]\('([A-Za-z0-9_]+)'`),
		regexp.MustCompile(`data-i18n(?:-[a-z]+)?="([A-Za-z0-9_]+)"`),
	}
)

func TestI18NKeys(t *testing.T) {
	js := file(t, "app.js")
	m := i18nBlock.FindStringSubmatch(js)
	if m == nil {
		t.Fatal("app.js has no `const I18N = {vi: {...}, en: {...}}` block in the expected layout")
	}
	keys := func(block string) map[string]bool {
		set := map[string]bool{}
		for _, k := range i18nKey.FindAllStringSubmatch(block, -1) {
			if set[k[1]] {
				t.Errorf("key %s defined twice", k[1])
			}
			set[k[1]] = true
		}
		return set
	}
	vi, en := keys(m[1]), keys(m[2])
	if len(vi) < 50 {
		t.Fatalf("only %d Vietnamese keys parsed", len(vi))
	}
	for k := range vi {
		if !en[k] {
			t.Errorf("key %s is Vietnamese only", k)
		}
	}
	for k := range en {
		if !vi[k] {
			t.Errorf("key %s is English only", k)
		}
	}
	used := map[string]bool{}
	for _, src := range []string{js, file(t, "index.html")} {
		for _, re := range i18nUse {
			for _, u := range re.FindAllStringSubmatch(src, -1) {
				used[u[1]] = true
			}
		}
	}
	if len(used) < 50 {
		t.Fatalf("only %d used keys found: the usage regexps no longer match the code", len(used))
	}
	for k := range used {
		if !vi[k] || !en[k] {
			t.Errorf("key %q is used but not defined in both languages", k)
		}
	}
}

// TestTestIDs keeps the names the browser tests rely on.
func TestTestIDs(t *testing.T) {
	src := file(t, "index.html") + file(t, "app.js")
	ids := []string{
		"conn", "mute", "lang", "nav-board", "nav-map", "nav-silences", "nav-sources",
		"token-input", "token-submit", "critical-banner", "alert-row", "filter-severity",
		"filter-category", "filter-area", "map-unit", "alert-detail", "history", "history-entry",
		"series-chart", "btn-ack", "btn-unack", "assign-to", "btn-assign", "comment-text",
		"btn-comment", "btn-silence", "silence-row", "btn-expire", "silence-submit",
		"sil-comment", "sil-ends", "sil-add-matcher",
	}
	for _, id := range ids {
		if !strings.Contains(src, `data-testid="`+id+`"`) {
			t.Errorf("data-testid=%q is missing", id)
		}
	}
	for _, prefix := range []string{"sil-name-", "sil-value-"} {
		if !strings.Contains(src, `data-testid="`+prefix+"${n}"+`"`) {
			t.Errorf("indexed data-testid %q is missing", prefix)
		}
	}
	for _, attr := range []string{"data-fingerprint=", "data-severity=", "data-area=", "data-worst=", "data-silence-id="} {
		if !strings.Contains(src, attr) {
			t.Errorf("attribute %s is missing", attr)
		}
	}
	// These are in the static page, so they exist before any script runs.
	for _, id := range []string{"conn", "critical-banner", "token-input", "token-submit", "lang", "mute"} {
		if !strings.Contains(file(t, "index.html"), `data-testid="`+id+`"`) {
			t.Errorf("data-testid=%q must be in index.html", id)
		}
	}
}
