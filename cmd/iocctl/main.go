// Command iocctl is the operator's command line for iocd's HTTP API: the
// alerts firing now, live transitions, operators' actions and silences.
// See usage for the commands.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/apiclient"
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
	c := &apiclient.Client{Base: *api, Token: *token}
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

func list(ctx context.Context, c *apiclient.Client, p printer) error {
	alerts, err := c.Firing(ctx)
	if err != nil {
		return err
	}
	p.firing(alerts)
	return nil
}

// watch follows the SSE stream until ctx ends, reconnecting (and printing
// the snapshot again) when iocd restarts.
func watch(ctx context.Context, c *apiclient.Client, p printer, stderr io.Writer) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := c.Stream(ctx, p.firing, p.transition)
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
