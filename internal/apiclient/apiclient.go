// Package apiclient calls iocd's HTTP API (CONTRACT.md sections 7 and 8):
// the firing alerts and their stream, operators' actions and history,
// and silences. iocctl is its user; a script or service can be another.
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/silence"
)

// Client is one identity's view of one iocd. The zero HTTP uses
// http.DefaultClient.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8080
	Token string // bearer token, when iocd has IOC_HTTP_TOKENS
	HTTP  *http.Client
}

// ErrUnauthorized is a 401: no token, or a wrong one.
var ErrUnauthorized = errors.New("iocd wants a valid API token")

// Firing returns the alerts firing now, most severe first.
func (c *Client) Firing(ctx context.Context) ([]alert.Alert, error) {
	var out []alert.Alert
	err := c.call(ctx, http.MethodGet, "/api/v1/alerts", nil, &out)
	return out, err
}

// Act takes an operator's action on a firing alert: by is the actor when
// iocd has no tokens (with tokens, the token's name is). For assign, to is
// the assignee ("" unassigns); for a comment, comment is its text.
func (c *Client) Act(ctx context.Context, fingerprint string, kind alert.ActionKind, by, to, comment string) error {
	body := map[string]any{"by": by}
	path := string(kind)
	switch kind {
	case alert.ActionComment:
		path, body["text"] = "comments", comment
	case alert.ActionAssign:
		body["to"], body["comment"] = to, comment
	default:
		body["comment"] = comment
	}
	return c.call(ctx, http.MethodPost, alertPath(fingerprint, path), body, nil)
}

// History returns every transition and action of a fingerprint, oldest first.
func (c *Client) History(ctx context.Context, fingerprint string) ([]alert.HistoryEntry, error) {
	var out []alert.HistoryEntry
	err := c.call(ctx, http.MethodGet, alertPath(fingerprint, "history"), nil, &out)
	return out, err
}

// Silences returns the active and pending silences, then the recently
// expired ones.
func (c *Client) Silences(ctx context.Context) ([]silence.Silence, error) {
	var out []silence.Silence
	err := c.call(ctx, http.MethodGet, "/api/v1/silences", nil, &out)
	return out, err
}

// CreateSilence stores a silence and returns its id; by is the creator
// when iocd has no tokens.
func (c *Client) CreateSilence(ctx context.Context, s silence.Silence, by string) (string, error) {
	body := map[string]any{"matchers": s.Matchers, "startsAt": s.StartsAt, "endsAt": s.EndsAt, "comment": s.Comment, "createdBy": by}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	err := c.call(ctx, http.MethodPost, "/api/v1/silences", body, &out)
	return out.SilenceID, err
}

// ExpireSilence ends a silence now; by is who, when iocd has no tokens.
func (c *Client) ExpireSilence(ctx context.Context, id, by string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/silences/"+url.PathEscape(id)+"?by="+url.QueryEscape(by), nil, nil)
}

// Stream follows /api/v1/alerts/stream until it ends or ctx does: snapshot
// gets the firing alerts on connect (and again when silences change),
// transition every alert transition after them. It returns why the
// stream ended; a caller that wants to stay on reconnects.
func (c *Client) Stream(ctx context.Context, snapshot func([]alert.Alert), transition func(alert.Alert)) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/alerts/stream", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return ReadEvents(resp.Body, func(name, id string, data []byte) error {
		switch name {
		case "snapshot":
			var alerts []alert.Alert
			if err := json.Unmarshal(data, &alerts); err != nil {
				return fmt.Errorf("bad snapshot: %w", err)
			}
			snapshot(alerts)
		case "alert":
			var a alert.Alert
			if err := json.Unmarshal(data, &a); err != nil {
				return fmt.Errorf("bad alert: %w", err)
			}
			// The transition's sequence is in the event id, <id>:<seq>.
			if i := strings.LastIndexByte(id, ':'); i >= 0 {
				a.Seq, _ = strconv.Atoi(id[i+1:])
			}
			transition(a)
		case "error":
			return fmt.Errorf("iocd ended the stream: %s", data)
		}
		return nil
	})
}

// ReadEvents parses a Server-Sent Events stream: "event:", "id:" and
// "data:" lines, an event per blank line; comments (":") are keepalives.
func ReadEvents(r io.Reader, fn func(name, id string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024) // a snapshot of many alerts is one line
	name, id, data := "message", "", []byte(nil)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				if err := fn(name, id, data); err != nil {
					return err
				}
			}
			name, id, data = "message", "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("connection closed")
}

func alertPath(fingerprint, what string) string {
	return "/api/v1/alerts/" + url.PathEscape(fingerprint) + "/" + what
}

// call sends a JSON body (nil: none) and decodes a 2xx answer into out
// (nil: ignored); any other answer is an error with the server's reason.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, method, path, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasSuffix(path, "/stream") {
		req.Header.Set("Accept", "text/event-stream")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach iocd at %s: %w", c.Base, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, fmt.Errorf("%s%s: %w (give the API token with --token or IOC_HTTP_TOKEN)", c.Base, path, ErrUnauthorized)
	}
	return resp, nil
}
