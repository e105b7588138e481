package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseSilence(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		args []string
		want string // matchers and the end, or the error
	}{
		{"equal", []string{"--comment", "bảo trì", "source=aq-phu-bai-1"}, "source=aq-phu-bai-1/eq until 10:00"},
		{"regex and negative", []string{"area=~kim-.*", "severity!=critical", "rule!~flood.*", "--for", "30m", "--comment", "x"},
			"area=kim-.*/re/eq severity=critical rule=flood.*/re until 08:30"},
		{"quoted value", []string{`labels.river="huong"`, "--until", "2026-12-01T12:00:00+07:00", "--comment", "x"},
			"labels.river=huong/eq until 05:00"},
		{"no matcher", []string{"--comment", "x"}, "at least one matcher"},
		{"no comment", []string{"source=x"}, "--comment is required"},
		{"bad matcher", []string{"source", "--comment", "x"}, "is not a matcher"},
		{"bad duration", []string{"source=x", "--for", "soon", "--comment", "x"}, "positive duration"},
		{"missing value", []string{"source=x", "--comment"}, "needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSilence(tt.args, now)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				var parts []string
				for _, m := range s.Matchers {
					p := m.Name + "=" + m.Value
					if m.IsRegex {
						p += "/re"
					}
					if m.IsEqual {
						p += "/eq"
					}
					parts = append(parts, p)
				}
				got = strings.Join(parts, " ") + " until " + s.EndsAt.UTC().Format("15:04")
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
