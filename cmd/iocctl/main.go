// Command iocctl is the operator's command line for iocd's HTTP API: the
// alerts firing now, live transitions, operators' actions and silences.
// See usage for the commands.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("iocctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", defaultAPI(), "iocd's HTTP address (env IOC_HTTP_ADDR)")
	token := fs.String("token", os.Getenv("IOC_HTTP_TOKEN"), "bearer token, when iocd requires one (env IOC_HTTP_TOKEN)")
	color := fs.Bool("color", isTerminal(stdout), "colour severities")
	by := fs.String("by", os.Getenv("USER"), "who acts, when iocd has no tokens (with tokens, the token's name is)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p := printer{w: stdout, color: *color}
	c := client{base: *api, token: *token}
	switch strings.Join(fs.Args(), " ") {
	case "alerts":
		if err := list(ctx, c, p); err != nil {
			fmt.Fprintln(stderr, "iocctl:", err)
			return 1
		}
		return 0
	case "alerts watch":
		watch(ctx, c, p, stderr)
		return 0
	}
	if code, ok := command(ctx, c, *by, fs.Args(), stdout, stderr); ok {
		return code
	}
	fs.Usage()
	return 2
}

func defaultAPI() string {
	addr := os.Getenv("IOC_HTTP_ADDR")
	switch {
	case addr == "":
		addr = "127.0.0.1:8080"
	case strings.HasPrefix(addr, ":"):
		addr = "127.0.0.1" + addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr
}

// client calls iocd's HTTP API.
type client struct {
	base, token string
}

func (c client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if path == "/api/v1/alerts/stream" {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach iocd at %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, fmt.Errorf("%s%s: %s (give the API token with --token or IOC_HTTP_TOKEN)", c.base, path, resp.Status)
	}
	return resp, nil
}

func list(ctx context.Context, c client, p printer) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/alerts", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/api/v1/alerts: %s", c.base, resp.Status)
	}
	var alerts []alert.Alert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	p.firing(alerts)
	return nil
}

// watch follows the SSE stream until ctx ends, reconnecting (and printing
// the snapshot again) when iocd restarts.
func watch(ctx context.Context, c client, p printer, stderr io.Writer) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := stream(ctx, c, p)
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(stderr, "iocctl: alert stream: %v; reconnecting in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func stream(ctx context.Context, c client, p printer) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/alerts/stream", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return readEvents(resp.Body, func(name, id string, data []byte) error {
		switch name {
		case "snapshot":
			var alerts []alert.Alert
			if err := json.Unmarshal(data, &alerts); err != nil {
				return fmt.Errorf("bad snapshot: %w", err)
			}
			p.firing(alerts)
		case "alert":
			var a alert.Alert
			if err := json.Unmarshal(data, &a); err != nil {
				return fmt.Errorf("bad alert: %w", err)
			}
			// The transition's sequence is in the event id, <id>:<seq>.
			if i := strings.LastIndexByte(id, ':'); i >= 0 {
				a.Seq, _ = strconv.Atoi(id[i+1:])
			}
			p.transition(a)
		case "error":
			return fmt.Errorf("iocd ended the stream: %s", data)
		}
		return nil
	})
}

// readEvents parses a Server-Sent Events stream: "event:", "id:" and
// "data:" lines, an event per blank line; comments (":") are keepalives.
func readEvents(r io.Reader, fn func(name, id string, data []byte) error) error {
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

// printer writes one line per alert, for a terminal or a log.
type printer struct {
	w     io.Writer
	color bool
}

var sevColor = map[alert.Severity]string{alert.Info: "\x1b[36m", alert.Warning: "\x1b[33m", alert.Critical: "\x1b[1;31m"}

func (p printer) firing(alerts []alert.Alert) {
	fmt.Fprintf(p.w, "%d alert(s) firing\n", len(alerts))
	for _, a := range alerts {
		p.line(a, "FIRING  ")
	}
}

func (p printer) transition(a alert.Alert) {
	status := "FIRING  "
	if a.Status == alert.StatusResolved {
		status = "RESOLVED"
	} else if a.Seq > 1 {
		status = "CHANGED "
	}
	p.line(a, status)
}

func (p printer) line(a alert.Alert, status string) {
	sev := fmt.Sprintf("%-8s", strings.ToUpper(string(a.Severity)))
	if p.color {
		sev = sevColor[a.Severity] + sev + "\x1b[0m"
	}
	ack := ""
	if a.AcknowledgedBy != "" {
		ack = "  [đã tiếp nhận: " + a.AcknowledgedBy + "]"
	}
	if a.Assignee != "" {
		ack += "  [giao cho: " + a.Assignee + "]"
	}
	if len(a.SilencedBy) > 0 {
		ack += "  [tạm ẩn]"
	}
	fmt.Fprintf(p.w, "%s  %s %s  %-22s %-12s %s  (%s)%s\n", a.UpdatedAt.Local().Format("15:04:05"), sev, status, a.Rule, a.Area,
		a.Summary, a.Fingerprint, ack)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
