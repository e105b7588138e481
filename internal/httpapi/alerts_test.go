package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
)

var testT0 = time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)

func testAlert(fp string, seq int, st alert.Status, sev alert.Severity) alert.Alert {
	return alert.Alert{ID: "id-" + fp, Seq: seq, Fingerprint: fp, Rule: "river_flood", Status: st,
		Severity: sev, Kind: "environment", Area: "kim-long", StartsAt: testT0, UpdatedAt: testT0,
		Labels: map[string]string{"river": "huong"}}
}

// startServer serves on a free loopback port until the test ends.
func startServer(t *testing.T, alerts Alerts) *Server {
	t.Helper()
	return startServerWith(t, alerts, func(*Server) {})
}

// startServerWith lets setup configure the server before it serves.
func startServerWith(t *testing.T, alerts Alerts, setup func(*Server)) *Server {
	t.Helper()
	s, err := New("127.0.0.1:0", prometheus.NewRegistry(), nil, alerts, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	setup(s)
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.Serve()
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-served
	})
	return s
}

// sseEvent is one Server-Sent Event as read off the wire.
type sseEvent struct {
	event, id, data string
	comments        []string
}

// readEvent reads lines up to the blank line that ends an event.
func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (so far %+v)", err, ev)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.comments = append(ev.comments, value)
		case "event":
			ev.event = value
		case "id":
			ev.id = value
		case "data":
			ev.data = value
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

// openStream connects to the SSE endpoint and checks its headers.
func openStream(t *testing.T, s *Server) (*bufio.Reader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr()+"/api/v1/alerts/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	return bufio.NewReader(resp.Body), resp
}

func TestAlertsList(t *testing.T) {
	tests := []struct {
		name  string
		apply []alert.Alert
		want  string // fingerprints in order
	}{
		{"none", nil, ""},
		{"most severe first", []alert.Alert{
			testAlert("a", 1, alert.StatusFiring, alert.Info),
			testAlert("b", 1, alert.StatusFiring, alert.Critical),
			testAlert("c", 1, alert.StatusFiring, alert.Warning),
		}, "b c a"},
		{"resolved left out", []alert.Alert{
			testAlert("a", 1, alert.StatusFiring, alert.Info),
			testAlert("b", 1, alert.StatusFiring, alert.Warning),
			testAlert("a", 2, alert.StatusResolved, alert.Info),
		}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			board := alert.NewBoard()
			for _, a := range tt.apply {
				board.Apply(a)
			}
			s := startServer(t, board)
			resp, err := http.Get("http://" + s.Addr() + "/api/v1/alerts")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
			}
			if tt.want == "" && strings.TrimSpace(string(body)) != "[]" {
				t.Errorf("body = %q, want []", body)
			}
			var got []alert.Alert
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			fps := make([]string, len(got))
			for i, a := range got {
				fps[i] = a.Fingerprint
			}
			if s := strings.Join(fps, " "); s != tt.want {
				t.Errorf("alerts = %q, want %q", s, tt.want)
			}
		})
	}
}

func TestAlertsStream(t *testing.T) {
	board := alert.NewBoard()
	board.Apply(testAlert("before", 1, alert.StatusFiring, alert.Warning))
	s := startServer(t, board)
	br, _ := openStream(t, s)

	ev := readEvent(t, br)
	if ev.event != "snapshot" {
		t.Fatalf("first event %+v, want a snapshot", ev)
	}
	var snap []alert.Alert
	if err := json.Unmarshal([]byte(ev.data), &snap); err != nil {
		t.Fatalf("snapshot data %q: %v", ev.data, err)
	}
	if len(snap) != 1 || snap[0].Fingerprint != "before" || snap[0].Labels["river"] != "huong" {
		t.Fatalf("snapshot = %+v", snap)
	}

	// The snapshot has arrived, so the subscription exists: these cannot
	// fall between the two.
	sent := []alert.Alert{
		testAlert("x", 1, alert.StatusFiring, alert.Info),
		testAlert("x", 2, alert.StatusFiring, alert.Critical),
	}
	for _, a := range sent {
		board.Apply(a)
	}
	for _, want := range sent {
		ev := readEvent(t, br)
		if ev.event != "alert" || ev.id != want.MsgID() {
			t.Fatalf("event %q id %q, want alert id %q", ev.event, ev.id, want.MsgID())
		}
		wantData, err := want.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if ev.data != string(wantData) {
			t.Errorf("data = %s, want %s", ev.data, wantData)
		}
	}
}

func TestAlertsStreamKeepalive(t *testing.T) {
	s := startServer(t, alert.NewBoard())
	s.keepalive = 10 * time.Millisecond // before any request, so no race
	br, _ := openStream(t, s)
	if ev := readEvent(t, br); ev.event != "snapshot" || ev.data != "[]" {
		t.Fatalf("first event %+v, want an empty snapshot", ev)
	}
	if ev := readEvent(t, br); len(ev.comments) != 1 || ev.comments[0] != "keepalive" || ev.event != "" {
		t.Fatalf("event %+v, want a keepalive comment", ev)
	}
}

func TestAlertsStreamClosedSubscription(t *testing.T) {
	board := alert.NewBoard()
	s := startServer(t, board)
	br, _ := openStream(t, s)
	readEvent(t, br) // snapshot
	board.Close()    // as when the client is dropped for being slow
	ev := readEvent(t, br)
	var body map[string]string
	if err := json.Unmarshal([]byte(ev.data), &body); ev.event != "error" || err != nil || body["error"] == "" {
		t.Fatalf("event %+v, want an error event", ev)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("stream not ended after the error event: %v", err)
	}
}

func TestShutdownWithStreamClient(t *testing.T) {
	s := startServer(t, alert.NewBoard())
	br, _ := openStream(t, s)
	readEvent(t, br) // snapshot: the handler is running

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Shutdown took %v with an SSE client connected", d)
	}
	if ev := readEvent(t, br); ev.event != "error" {
		t.Errorf("event %+v, want an error event before the stream ends", ev)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("stream not ended after Shutdown: %v", err)
	}
}

func TestAlertsNotServedWithoutBoard(t *testing.T) {
	s := startServer(t, nil)
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts/stream"} {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

// ackBoard is a board that records the actions handed to it.
type ackBoard struct {
	*alert.Board
	mu   sync.Mutex
	acks []string
	full []alert.Action
}

func (b *ackBoard) Act(fp string, a alert.Action) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acks = append(b.acks, fp+"|"+a.Actor+"|"+a.Comment)
	b.full = append(b.full, a)
}

func TestAlertActions(t *testing.T) {
	b := &ackBoard{Board: alert.NewBoard()}
	b.Apply(testAlert("fp1", 1, alert.StatusFiring, alert.Warning))
	s := startServer(t, b)
	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+s.Addr()+"/api/v1/alerts/"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return resp.StatusCode, e.Error
		}
		return resp.StatusCode, string(out)
	}
	long := strings.Repeat("ấ", 2001)
	tests := []struct {
		name, path, body string
		code             int
		want             string
		act              *alert.Action // what reaches the engine
	}{
		{"ack", "fp1/ack", `{"by": " Lan ", "comment": "đội cứu hộ đã tới"}`, http.StatusAccepted, `"status":"accepted"`,
			&alert.Action{Kind: alert.ActionAck, Actor: "Lan", Comment: "đội cứu hộ đã tới"}},
		{"not firing", "fp2/ack", `{"by": "Lan"}`, http.StatusNotFound, "no firing alert", nil},
		{"open API, nobody named", "fp1/ack", `{"by": "  "}`, http.StatusAccepted, `"status":"accepted"`,
			&alert.Action{Kind: alert.ActionAck, Actor: "anonymous"}},
		{"open API, no body", "fp1/unack", ``, http.StatusAccepted, `"action":"unack"`,
			&alert.Action{Kind: alert.ActionUnack, Actor: "anonymous"}},
		{"not JSON", "fp1/ack", `by=Lan`, http.StatusBadRequest, "must be JSON", nil},
		{"two objects", "fp1/ack", `{} {}`, http.StatusBadRequest, "one JSON object", nil},
		{"unknown field", "fp1/ack", `{"by": "Lan", "severity": "info"}`, http.StatusBadRequest, "unknown field", nil},
		{"comment too long", "fp1/ack", `{"comment": "` + long + `"}`, http.StatusBadRequest, "at most 2000", nil},
		{"assign", "fp1/assign", `{"to": " pccc-hue ", "comment": "<b>gấp</b>"}`, http.StatusAccepted, `"action":"assign"`,
			&alert.Action{Kind: alert.ActionAssign, Actor: "anonymous", To: "pccc-hue", Comment: "<b>gấp</b>"}},
		{"unassign", "fp1/assign", `{"to": ""}`, http.StatusAccepted, `"action":"assign"`,
			&alert.Action{Kind: alert.ActionAssign, Actor: "anonymous"}},
		{"assign without to", "fp1/assign", `{"comment": "x"}`, http.StatusBadRequest, `needs "to"`, nil},
		{"assignee too long", "fp1/assign", `{"to": "` + strings.Repeat("x", 101) + `"}`, http.StatusBadRequest, "at most 100", nil},
		{"to on ack", "fp1/ack", `{"to": "x"}`, http.StatusBadRequest, `"to" is for assign`, nil},
		{"comment", "fp1/comments", `{"text": "<script>alert(1)</script>"}`, http.StatusAccepted, `"action":"comment"`,
			&alert.Action{Kind: alert.ActionComment, Actor: "anonymous", Comment: "<script>alert(1)</script>"}},
		{"empty comment", "fp1/comments", `{"text": ""}`, http.StatusBadRequest, "must not be empty", nil},
		{"comment as comment", "fp1/comments", `{"comment": "x"}`, http.StatusBadRequest, `only {"text"`, nil},
		{"comment too long", "fp1/comments", `{"text": "` + long + `"}`, http.StatusBadRequest, "at most 2000", nil},
		{"text on ack", "fp1/ack", `{"text": "x"}`, http.StatusBadRequest, `"text" is for comments`, nil},
		{"comment on unknown", "nope/comments", `{"text": "x"}`, http.StatusNotFound, "no firing alert", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.full)
			code, body := post(tt.path, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("%d %s, want %d with %q", code, body, tt.code, tt.want)
			}
			switch {
			case tt.act == nil && len(b.full) != before:
				t.Fatalf("passed on %+v", b.full[before:])
			case tt.act != nil && len(b.full) != before+1:
				t.Fatal("not passed on")
			case tt.act != nil:
				got := b.full[before]
				if got.Kind != tt.act.Kind || got.Actor != tt.act.Actor || got.Comment != tt.act.Comment || got.To != tt.act.To ||
					got.Role != "admin" || got.At.IsZero() {
					t.Fatalf("passed on %+v, want %+v", got, *tt.act)
				}
			}
		})
	}
}

func TestAlertActionsNotServedWithoutActions(t *testing.T) {
	s := startServer(t, alert.NewBoard())
	resp, err := http.Post("http://"+s.Addr()+"/api/v1/alerts/fp1/ack", "application/json", strings.NewReader(`{"by":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
