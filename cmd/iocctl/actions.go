package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const usage = `usage: iocctl [flags] COMMAND
  alerts                                  the alerts firing now
  alerts watch                            the firing alerts, then every transition as it happens
  alerts ack FINGERPRINT [COMMENT]        acknowledge a firing alert
  alerts unack FINGERPRINT [COMMENT]      take the acknowledgement back
  alerts assign FINGERPRINT TO [COMMENT]  assign it to a person or unit ("" unassigns)
  alerts comment FINGERPRINT TEXT         add a comment
  alerts history FINGERPRINT              its transitions and actions, oldest first
  silences                                active and pending silences, then recently expired
  silences add [--for 2h | --until TIME] [--from TIME] --comment TEXT MATCHER...
                                          silence what the matchers select; a matcher is
                                          name=value, name!=value, name=~regex or name!~regex
                                          (names: rule severity kind type metric area source
                                          category labels.KEY); TIME is RFC 3339
  silences expire ID                      end a silence now
flags:
`

// command runs the commands beyond alerts and alerts watch; ok is false
// when args are none of them.
func command(ctx context.Context, c client, by string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fail := func(err error) (int, bool) {
		fmt.Fprintln(stderr, "iocctl:", err)
		return 1, true
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	n := len(args)
	switch {
	case n >= 3 && n <= 4 && args[0] == "alerts" && (args[1] == "ack" || args[1] == "unack"):
		body := map[string]string{"by": by, "comment": arg(3)}
		if err := c.send(ctx, http.MethodPost, alertPath(args[2], args[1]), body, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s %s: accepted\n", args[1], args[2])
	case n >= 4 && n <= 5 && args[0] == "alerts" && args[1] == "assign":
		body := map[string]string{"by": by, "to": args[3], "comment": arg(4)}
		if err := c.send(ctx, http.MethodPost, alertPath(args[2], "assign"), body, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "assign %s to %q: accepted\n", args[2], args[3])
	case n == 4 && args[0] == "alerts" && args[1] == "comment":
		if err := c.send(ctx, http.MethodPost, alertPath(args[2], "comments"), map[string]string{"by": by, "text": args[3]}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "comment on %s: accepted\n", args[2])
	case n == 3 && args[0] == "alerts" && args[1] == "history":
		var h []historyEntry
		if err := c.send(ctx, http.MethodGet, alertPath(args[2], "history"), nil, &h); err != nil {
			return fail(err)
		}
		printHistory(stdout, h)
	case n == 1 && args[0] == "silences":
		var list []silence
		if err := c.send(ctx, http.MethodGet, "/api/v1/silences", nil, &list); err != nil {
			return fail(err)
		}
		printSilences(stdout, list)
	case n >= 2 && args[0] == "silences" && args[1] == "add":
		body, err := parseSilence(args[2:], time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "iocctl: silences add:", err)
			return 2, true
		}
		var out struct {
			SilenceID string `json:"silenceID"`
		}
		if err := c.send(ctx, http.MethodPost, "/api/v1/silences", body, &out); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, out.SilenceID)
	case n == 3 && args[0] == "silences" && args[1] == "expire":
		if err := c.send(ctx, http.MethodDelete, "/api/v1/silences/"+url.PathEscape(args[2]), nil, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "silence %s expired\n", args[2])
	default:
		return 0, false
	}
	return 0, true
}

func alertPath(fingerprint, what string) string {
	return "/api/v1/alerts/" + url.PathEscape(fingerprint) + "/" + what
}

// send calls the API with a JSON body (nil: none) and decodes a 2xx
// answer into out (nil: ignored); any other answer is an error with the
// server's reason.
func (c client) send(ctx context.Context, method, path string, body, out any) error {
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

type historyEntry struct {
	At       time.Time `json:"at"`
	Type     string    `json:"type"`
	AlertID  string    `json:"alertId"`
	Seq      int       `json:"seq"`
	Status   string    `json:"status"`
	Severity string    `json:"severity"`
	Value    *float64  `json:"value"`
	Summary  string    `json:"summary"`
	Action   string    `json:"action"`
	Actor    string    `json:"actor"`
	Role     string    `json:"role"`
	Comment  string    `json:"comment"`
	To       string    `json:"to"`
}

func printHistory(w io.Writer, h []historyEntry) {
	for _, e := range h {
		at := e.At.Local().Format("2006-01-02 15:04:05")
		if e.Type == "transition" {
			fmt.Fprintf(w, "%s  #%-3d %-8s %-8s %s\n", at, e.Seq, strings.ToUpper(e.Status), e.Severity, e.Summary)
			continue
		}
		what := e.Action
		if e.To != "" {
			what += " → " + e.To
		}
		line := fmt.Sprintf("%s  #%-3d %-8s by %s (%s)", at, e.Seq, what, e.Actor, e.Role)
		if e.Comment != "" {
			line += ": " + e.Comment
		}
		fmt.Fprintln(w, line)
	}
}

type matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

type silence struct {
	ID        string    `json:"id,omitempty"`
	Matchers  []matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
	Comment   string    `json:"comment"`
	Status    *struct {
		State string `json:"state"`
	} `json:"status,omitempty"`
}

// parseSilence reads the arguments of silences add, amtool-style.
func parseSilence(args []string, now time.Time) (silence, error) {
	s := silence{StartsAt: now.UTC()}
	var dur time.Duration = 2 * time.Hour
	var until time.Time
	for i := 0; i < len(args); i++ {
		a := args[i]
		flagValue := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		switch a {
		case "--for", "--from", "--until", "--comment":
			v, err := flagValue()
			if err != nil {
				return s, err
			}
			switch a {
			case "--for":
				if dur, err = time.ParseDuration(v); err != nil || dur <= 0 {
					return s, fmt.Errorf("--for %q: a positive duration like 2h or 30m", v)
				}
			case "--from":
				if s.StartsAt, err = time.Parse(time.RFC3339, v); err != nil {
					return s, fmt.Errorf("--from %q: an RFC 3339 time like 2026-12-01T08:00:00+07:00", v)
				}
			case "--until":
				if until, err = time.Parse(time.RFC3339, v); err != nil {
					return s, fmt.Errorf("--until %q: an RFC 3339 time like 2026-12-01T12:00:00+07:00", v)
				}
			case "--comment":
				s.Comment = v
			}
			continue
		}
		m, err := parseMatcher(a)
		if err != nil {
			return s, err
		}
		s.Matchers = append(s.Matchers, m)
	}
	s.EndsAt = s.StartsAt.Add(dur)
	if !until.IsZero() {
		s.EndsAt = until
	}
	switch {
	case len(s.Matchers) == 0:
		return s, fmt.Errorf("give at least one matcher, e.g. source=aq-phu-bai-1")
	case s.Comment == "":
		return s, fmt.Errorf("--comment is required: say why it is silenced")
	}
	return s, nil
}

func parseMatcher(a string) (matcher, error) {
	for _, op := range []struct {
		sep          string
		regex, equal bool
	}{{"!~", true, false}, {"=~", true, true}, {"!=", false, false}, {"=", false, true}} {
		if name, value, ok := strings.Cut(a, op.sep); ok && name != "" {
			return matcher{Name: name, Value: strings.Trim(value, `"`), IsRegex: op.regex, IsEqual: op.equal}, nil
		}
	}
	return matcher{}, fmt.Errorf("%q is not a matcher: write name=value, name!=value, name=~regex or name!~regex", a)
}

func printSilences(w io.Writer, list []silence) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no silences")
		return
	}
	for _, s := range list {
		var ms []string
		for _, m := range s.Matchers {
			op := map[[2]bool]string{{false, true}: "=", {false, false}: "!=", {true, true}: "=~", {true, false}: "!~"}[[2]bool{m.IsRegex, m.IsEqual}]
			ms = append(ms, m.Name+op+m.Value)
		}
		state := ""
		if s.Status != nil {
			state = s.Status.State
		}
		fmt.Fprintf(w, "%s  %-8s %s → %s  by %s  {%s}  %s\n", s.ID, state, s.StartsAt.Local().Format("01-02 15:04"),
			s.EndsAt.Local().Format("01-02 15:04"), s.CreatedBy, strings.Join(ms, ", "), s.Comment)
	}
}
