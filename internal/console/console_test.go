package console

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
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

// scripts are the page's ES modules by name: every check on code applies
// to all of them, not to one file.
func scripts(t *testing.T) map[string]string {
	t.Helper()
	entries, err := web.ReadDir("web")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if path.Ext(e.Name()) == ".js" {
			m[e.Name()] = file(t, e.Name())
		}
	}
	if m["app.js"] == "" || m["i18n.js"] == "" || m["dom.js"] == "" {
		t.Fatalf("web/ lacks app.js, i18n.js or dom.js: %v", slices.Sorted(maps.Keys(m)))
	}
	return m
}

// allScripts is every module's text, for checks that look for a use
// anywhere in the page's code.
func allScripts(t *testing.T) string {
	t.Helper()
	js := scripts(t)
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(js)) {
		b.WriteString(js[name])
		b.WriteString("\n")
	}
	return b.String()
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
		{"GET", "/assets/app.js", 200, "text/javascript; charset=utf-8", "import "},
		{"GET", "/assets/i18n.js", 200, "text/javascript; charset=utf-8", "const I18N = {"},
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

// TestAssetsServed: every embedded file is reachable with a type the
// browser accepts; a module served as anything but JavaScript is refused.
func TestAssetsServed(t *testing.T) {
	h := Handler()
	entries, err := web.ReadDir("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			t.Errorf("web/%s is a directory: /assets/{name} serves flat names only", name)
			continue
		}
		url := "/assets/" + name
		if name == "index.html" {
			url = "/"
		}
		resp, body := get(t, h, "GET", url, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", url, resp.StatusCode)
			continue
		}
		if want := contentTypes[path.Ext(name)]; resp.Header.Get("Content-Type") != want {
			t.Errorf("%s: Content-Type %q, want %q", url, resp.Header.Get("Content-Type"), want)
		}
		if body != file(t, name) {
			t.Errorf("%s: body differs from web/%s", url, name)
		}
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
	}
	js := scripts(t)
	names := slices.Sorted(maps.Keys(js))
	for _, name := range names {
		checks = append(checks, []struct{ file, re, why string }{
			{name, `\beval\s*\(|new\s+Function\b|setTimeout\(\s*['"]`, "code from strings"},
			{name, `\sstyle\s*=\s*\\?["']|\son[a-z]+\s*=\s*\\?["']`, "inline style or handler in markup"},
			{name, `document\.write|outerHTML`, "an HTML sink other than setHTML/addHTML"},
		}...)
	}
	for _, name := range append([]string{"index.html", "app.css"}, names...) {
		if m := regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/`).FindString(file(t, name)); m != "" {
			t.Errorf("%s has an external URL %q", name, m)
		}
	}
	for _, c := range checks {
		for _, m := range regexp.MustCompile(c.re).FindAllString(file(t, c.file), -1) {
			// The one script: the entry module, which imports the rest.
			if c.why == "script" && m == `<script type="module" src="/assets/app.js">` {
				continue
			}
			t.Errorf("%s: %s: %q", c.file, c.why, m)
		}
	}
	// Exactly one place turns strings into DOM, through esc().
	for _, sink := range []struct{ s, fn string }{{".innerHTML", "setHTML"}, {"insertAdjacentHTML", "addHTML"}} {
		for _, name := range names {
			want := 0
			if name == "dom.js" {
				want = 1
			}
			if n := strings.Count(js[name], sink.s); n != want {
				t.Errorf("%s uses %s %d times, want %d (only %s in dom.js)", name, sink.s, n, want, sink.fn)
			}
		}
	}
	if !strings.Contains(index, `<html lang="vi">`) || !strings.Contains(index, `<meta charset="utf-8">`) {
		t.Error("index.html must be Vietnamese by default and declare utf-8")
	}
}

var (
	importStmt = regexp.MustCompile(`(?m)^import\s*\{([^}]*)\}\s*from\s*'([^']*)';`)
	anyImport  = regexp.MustCompile(`\bimport\s*[\s{('"*]`)
	exportDecl = regexp.MustCompile(`(?m)^export\s+(?:async\s+)?(?:function|class|const|let)\s+([A-Za-z_$][\w$]*)`)
	// Strings, comments and method definitions are cut before looking for
	// uses, so 'api/v1' or a view's render() { is not a use.
	jsNoise  = regexp.MustCompile(`'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|//[^\n]*`)
	jsMethod = regexp.MustCompile(`(?m)^[ \t]+[A-Za-z_$][\w$]*\([^)\n]*\)\s*\{$`)
)

// TestModules checks what the browser checks only when it loads the page:
// each import names a module served next to it (./name.js resolves to
// /assets/name.js, and the handler serves no subdirectories) that exports
// the names asked for, and every module is reached from app.js, so none
// is left over. It also finds a module that calls another's export without
// importing it: the browser reports that only when the code runs, and the
// browser tests do not open every view.
func TestModules(t *testing.T) {
	js := scripts(t)
	exports := map[string]map[string]bool{}
	for name, src := range js {
		exports[name] = map[string]bool{}
		for _, m := range exportDecl.FindAllStringSubmatch(src, -1) {
			exports[name][m[1]] = true
		}
	}
	deps := map[string][]string{}
	for name, src := range js {
		stmts := importStmt.FindAllStringSubmatch(src, -1)
		if n := len(anyImport.FindAllString(src, -1)); n != len(stmts) {
			t.Errorf("%s: %d imports, %d of them in the form import {a, b} from './x.js';", name, n, len(stmts))
		}
		for _, m := range stmts {
			spec := m[2]
			dep, ok := strings.CutPrefix(spec, "./")
			if !ok || strings.Contains(dep, "/") || js[dep] == "" {
				t.Errorf("%s imports %q: only ./<name>.js of a module in web/ resolves", name, spec)
				continue
			}
			deps[name] = append(deps[name], dep)
			for _, id := range strings.Split(m[1], ",") {
				if id = strings.TrimSpace(id); id != "" && !exports[dep][id] {
					t.Errorf("%s imports %s from %s, which does not export it (one name per export declaration)", name, id, dep)
				}
			}
		}
	}
	owner := map[string]string{}
	for name := range exports {
		for id := range exports[name] {
			owner[id] = name
		}
	}
	for name, src := range js {
		imported := map[string]bool{}
		for _, m := range importStmt.FindAllStringSubmatch(src, -1) {
			for _, id := range strings.Split(m[1], ",") {
				imported[strings.TrimSpace(id)] = true
			}
		}
		code := jsMethod.ReplaceAllString(jsNoise.ReplaceAllString(src, "''"), "")
		for id, from := range owner {
			if from == name || imported[id] {
				continue
			}
			if regexp.MustCompile(`(?m)(?:^|[^\w$.])` + regexp.QuoteMeta(id) + "\\s*[(.`]").MatchString(code) {
				t.Errorf("%s uses %s without importing it from %s", name, id, from)
			}
		}
	}
	seen := map[string]bool{"app.js": true}
	for todo := []string{"app.js"}; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		for _, dep := range deps[name] {
			if !seen[dep] {
				seen[dep] = true
				todo = append(todo, dep)
			}
		}
	}
	for name := range js {
		if !seen[name] {
			t.Errorf("%s is not imported from app.js, directly or not", name)
		}
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
	m := i18nBlock.FindStringSubmatch(file(t, "i18n.js"))
	if m == nil {
		t.Fatal("i18n.js has no `const I18N = {vi: {...}, en: {...}}` block in the expected layout")
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
	for _, src := range []string{allScripts(t), file(t, "index.html")} {
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
	src := file(t, "index.html") + allScripts(t)
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
