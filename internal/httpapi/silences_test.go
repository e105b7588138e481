package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/silence"
	"github.com/iocstream/iocstream/internal/store"
)

// fakeSilences is a silence set in memory: every silence matches the
// alerts of its one "area" matcher, validation is the real one.
type fakeSilences struct {
	mu      sync.Mutex
	list    []silence.Silence
	by      []silence.Actor
	changes chan struct{}
}

func (f *fakeSilences) Create(_ context.Context, s silence.Silence, by silence.Actor) (silence.Silence, error) {
	if err := s.Validate(time.Now()); err != nil {
		return silence.Silence{}, fmt.Errorf("%w: %w", silence.ErrInvalid, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.ID = fmt.Sprintf("s%d", len(f.list)+1)
	f.list = append(f.list, s)
	f.by = append(f.by, by)
	f.changes <- struct{}{}
	return s, nil
}

func (f *fakeSilences) Expire(_ context.Context, id string, by silence.Actor) (silence.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.list {
		if s.ID == id {
			if !s.EndsAt.After(time.Now()) {
				return s, silence.ErrExpired
			}
			f.list[i].EndsAt = time.Now()
			f.by = append(f.by, by)
			f.changes <- struct{}{}
			return f.list[i], nil
		}
	}
	return silence.Silence{}, silence.ErrNotFound
}

func (f *fakeSilences) List() []silence.Silence {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]silence.Silence(nil), f.list...)
}

func (f *fakeSilences) SilencedBy(x silence.Fields) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.list {
		if s.EndsAt.After(time.Now()) && s.Matches(x) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func (f *fakeSilences) Changes() <-chan struct{} { return f.changes }

func TestSilencesAPI(t *testing.T) {
	b := alert.NewBoard()
	b.Apply(testAlert("fp1", 1, alert.StatusFiring, alert.Warning)) // kim-long
	sil := &fakeSilences{changes: make(chan struct{}, 16)}
	s := startServerWith(t, b, func(s *Server) {
		s.HandleSilences(t.Context(), sil)
		if err := s.RequireTokens([]string{"lan:operator=tok-op", "minh:viewer=tok-view"}, true); err != nil {
			t.Fatal(err)
		}
	})
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}

	// The stream: a snapshot now, and again when the silences change.
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/api/v1/alerts/stream", nil)
	req.Header.Set("Authorization", "Bearer tok-view")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				events <- strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no stream event")
			return ""
		}
	}
	if e := next(); strings.Contains(e, "silencedBy") {
		t.Fatalf("first snapshot %s", e)
	}

	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	good := `{"matchers": [{"name": "area", "value": "kim-long", "isRegex": false, "isEqual": true}], "endsAt": "` + ends +
		`", "comment": "bảo trì"}`
	tests := []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"viewer may not", "POST", "/api/v1/silences", "tok-view", good, http.StatusForbidden, "viewer"},
		{"not JSON", "POST", "/api/v1/silences", "tok-op", `matchers`, http.StatusBadRequest, "must be a silence"},
		{"unknown field", "POST", "/api/v1/silences", "tok-op", `{"matcher": []}`, http.StatusBadRequest, "unknown field"},
		{"an update", "POST", "/api/v1/silences", "tok-op", `{"id": "s1", "comment": "x"}`, http.StatusBadRequest, "cannot be updated"},
		{"unknown name", "POST", "/api/v1/silences", "tok-op", strings.Replace(good, `"area"`, `"zone"`, 1),
			http.StatusBadRequest, "not a matcher name"},
		{"created", "POST", "/api/v1/silences", "tok-op", good, http.StatusCreated, `"silenceID":"s1"`},
		{"listed", "GET", "/api/v1/silences", "tok-view", "", http.StatusOK, `"id":"s1"`},
		{"shown on the board", "GET", "/api/v1/alerts", "tok-view", "", http.StatusOK, `"silencedBy":["s1"]`},
		{"viewer may not expire", "DELETE", "/api/v1/silences/s1", "tok-view", "", http.StatusForbidden, "viewer"},
		{"expired", "DELETE", "/api/v1/silences/s1", "tok-op", "", http.StatusOK, `"status":"expired"`},
		{"expired again", "DELETE", "/api/v1/silences/s1", "tok-op", "", http.StatusConflict, "already expired"},
		{"unknown", "DELETE", "/api/v1/silences/s9", "tok-op", "", http.StatusNotFound, "no silence"},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.token, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Fatalf("%s: %d %s, want %d with %q", tt.name, code, body, tt.code, tt.want)
		}
		switch tt.name {
		case "created":
			if e := next(); !strings.Contains(e, `"silencedBy":["s1"]`) {
				t.Fatalf("snapshot after the create: %s", e)
			}
		case "expired":
			if e := next(); strings.Contains(e, "silencedBy") {
				t.Fatalf("snapshot after the expiry: %s", e)
			}
		}
	}
	if fmt.Sprint(sil.by) != "[{lan operator} {lan operator}]" {
		t.Fatalf("actors %v", sil.by)
	}
}

// fakeStore answers history and series queries.
type fakeStore struct {
	err    error
	query  store.SeriesQuery
	points []store.Point
}

func (f *fakeStore) History(_ context.Context, fp string) ([]alert.HistoryEntry, error) {
	if f.err != nil || fp != "fp1" {
		return nil, f.err
	}
	return []alert.HistoryEntry{{Type: "transition", AlertID: "id-fp1", Seq: 1}, {Type: "action", Action: "ack", Actor: "lan", Seq: 2}}, nil
}

func (f *fakeStore) Series(_ context.Context, q store.SeriesQuery) ([]store.Point, error) {
	f.query = q
	return f.points, f.err
}

func TestHistoryAndSeries(t *testing.T) {
	b := alert.NewBoard()
	a := testAlert("fp1", 1, alert.StatusFiring, alert.Warning)
	a.Metric, a.Source, a.Agg, a.Op, a.Rule = "height", "wl-kim-long", "max", ">=", "river"
	a.StartsAt = time.Now().Add(-48 * time.Hour) // a replayed past day
	b.Apply(a)
	clear := 1.8
	rule := alert.Rule{Name: "river", Kind: alert.KindThreshold, Threshold: alert.Threshold{Op: ">=", Clear: &clear,
		Levels: []alert.Level{{Threshold: 2, Severity: alert.Warning, Name: "báo động 2"}, {Threshold: 3, Severity: alert.Critical}}}}
	st := &fakeStore{points: []store.Point{{T: a.StartsAt, V: 2.1}}}
	s := startServerWith(t, b, func(s *Server) {
		s.HandleHistory(st)
		s.HandleSeries(st, func(name string) (alert.Rule, bool) { return rule, name == "river" })
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/alerts/fp1/history", http.StatusOK, `"actor":"lan"`},
		{"/api/v1/alerts/fp2/history", http.StatusNotFound, "no alert"},
		{"/api/v1/alerts/a%27b/history", http.StatusBadRequest, "letters and digits"},
		{"/api/v1/series?fingerprint=fp1", http.StatusOK, `"levels":[{"name":"báo động 2","threshold":2,"severity":"warning"},`},
		{"/api/v1/series?fingerprint=fp1&hours=24", http.StatusOK, `"clear":1.8`},
		{"/api/v1/series?fingerprint=fp1&hours=169", http.StatusBadRequest, "1 to 168"},
		{"/api/v1/series?fingerprint=fp1&hours=x", http.StatusBadRequest, "1 to 168"},
		{"/api/v1/series?fingerprint=", http.StatusBadRequest, "fingerprint"},
		{"/api/v1/series?fingerprint=fp9", http.StatusNotFound, "no firing alert"},
	}
	for _, tt := range tests {
		code, body := get(tt.path)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Fatalf("%s: %d %s, want %d with %q", tt.path, code, body, tt.code, tt.want)
		}
	}
	// The query is the alert's series, around the moment it fired.
	q := st.query
	if q.Kind != "environment" || q.Metric != "height" || q.Area != "kim-long" || q.Source != "wl-kim-long" || q.Agg != "max" ||
		q.To.Sub(q.From) != 24*time.Hour || a.StartsAt.Before(q.From) || a.StartsAt.After(q.To) {
		t.Fatalf("series query %+v for an alert that started at %s", q, a.StartsAt)
	}
	var out struct{ Points []store.Point }
	_, body := get("/api/v1/series?fingerprint=fp1")
	if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Points) != 1 || out.Points[0].V != 2.1 {
		t.Fatalf("points: %v %s", err, body)
	}
	// ClickHouse away: 503 with the reason, for both.
	st.err = errors.New("connection refused")
	for _, path := range []string{"/api/v1/alerts/fp1/history", "/api/v1/series?fingerprint=fp1"} {
		if code, body := get(path); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
			t.Fatalf("%s with ClickHouse away: %d %s", path, code, body)
		}
	}
}
