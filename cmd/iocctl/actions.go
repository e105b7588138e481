package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/apiclient"
	"github.com/iocstream/iocstream/internal/silence"
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
func command(ctx context.Context, c *apiclient.Client, by string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
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
		if err := c.Act(ctx, args[2], alert.ActionKind(args[1]), by, "", arg(3)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s %s: accepted\n", args[1], args[2])
	case n >= 4 && n <= 5 && args[0] == "alerts" && args[1] == "assign":
		if err := c.Act(ctx, args[2], alert.ActionAssign, by, args[3], arg(4)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "assign %s to %q: accepted\n", args[2], args[3])
	case n == 4 && args[0] == "alerts" && args[1] == "comment":
		if err := c.Act(ctx, args[2], alert.ActionComment, by, "", args[3]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "comment on %s: accepted\n", args[2])
	case n == 3 && args[0] == "alerts" && args[1] == "history":
		h, err := c.History(ctx, args[2])
		if err != nil {
			return fail(err)
		}
		printHistory(stdout, h)
	case n == 1 && args[0] == "silences":
		list, err := c.Silences(ctx)
		if err != nil {
			return fail(err)
		}
		printSilences(stdout, list)
	case n >= 2 && args[0] == "silences" && args[1] == "add":
		s, err := parseSilence(args[2:], time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "iocctl: silences add:", err)
			return 2, true
		}
		id, err := c.CreateSilence(ctx, s, by)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, id)
	case n == 3 && args[0] == "silences" && args[1] == "expire":
		if err := c.ExpireSilence(ctx, args[2], by); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "silence %s expired\n", args[2])
	default:
		return 0, false
	}
	return 0, true
}

func printHistory(w io.Writer, h []alert.HistoryEntry) {
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

// parseSilence reads the arguments of silences add, amtool-style; iocd
// validates the rest.
func parseSilence(args []string, now time.Time) (silence.Silence, error) {
	s := silence.Silence{StartsAt: now.UTC()}
	dur := 2 * time.Hour
	var until time.Time
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "--for", "--from", "--until", "--comment":
			if i+1 >= len(args) {
				return s, fmt.Errorf("%s needs a value", a)
			}
			i++
			v := args[i]
			var err error
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
		m, err := silence.ParseMatcher(a)
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

func printSilences(w io.Writer, list []silence.Silence) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no silences")
		return
	}
	for _, s := range list {
		var ms []string
		for _, m := range s.Matchers {
			ms = append(ms, m.String())
		}
		fmt.Fprintf(w, "%s  %-8s %s → %s  by %s  {%s}  %s\n", s.ID, s.Status.State, s.StartsAt.Local().Format("01-02 15:04"),
			s.EndsAt.Local().Format("01-02 15:04"), s.CreatedBy, strings.Join(ms, ", "), s.Comment)
	}
}
