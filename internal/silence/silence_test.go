package silence

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fields is an alert as the matchers see it.
type fields map[string]string

func (f fields) Field(name string) string { return f[name] }

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func eq(n, v string) Matcher    { return Matcher{Name: n, Value: v, IsEqual: true} }
func neq(n, v string) Matcher   { return Matcher{Name: n, Value: v} }
func re(n, v string) Matcher    { return Matcher{Name: n, Value: v, IsRegex: true, IsEqual: true} }
func notRe(n, v string) Matcher { return Matcher{Name: n, Value: v, IsRegex: true} }

// window is a valid silence of the matchers, from t0 for 4 hours.
func window(ms ...Matcher) Silence {
	return Silence{Matchers: ms, StartsAt: t0, EndsAt: t0.Add(4 * time.Hour), Comment: "bảo trì trạm"}
}

func TestValidate(t *testing.T) {
	now := t0.Add(-time.Hour)
	with := func(f func(*Silence), ms ...Matcher) Silence {
		s := window(ms...)
		f(&s)
		return s
	}
	src := eq("source", "aq-phu-bai-1")
	cases := []struct {
		name string
		sil  Silence
		err  string // a part of the error; "" for a valid silence
	}{
		{"one matcher", window(src), ""},
		{"every name", window(eq("rule", "r"), eq("severity", "critical"), eq("kind", "aq"), eq("type", "threshold"),
			eq("metric", "pm25"), eq("area", "hue"), eq("source", "s"), eq("category", "air"), eq("labels.river", "huong"),
			eq("labels.a_b.c-9", "x")), ""},
		{"regex", window(re("source", "aq-.*")), ""},
		{"one matcher of the empty string is enough", window(eq("labels.river", ""), src), ""},
		{"value of 256 characters", window(eq("source", strings.Repeat("ă", MaxValueLen))), ""},
		{"exactly 30 days", with(func(s *Silence) { s.EndsAt = s.StartsAt.Add(MaxDuration) }, src), ""},
		{"started in the past", with(func(s *Silence) { s.StartsAt = now.Add(-48 * time.Hour) }, src), ""},
		{"comment of 500 characters", with(func(s *Silence) { s.Comment = strings.Repeat("ư", MaxCommentLen) }, src), ""},

		{"no matcher", window(), "matchers: at least one matcher is required"},
		{"unknown name", window(src, eq("foo", "x")),
			`matcher 2: "foo" is not a matcher name (rule, severity, kind, type, metric, area, source, category, labels.<key>)`},
		{"empty name", window(eq("", "x")), `matcher 1: "" is not a matcher name`},
		{"name in capitals", window(eq("Source", "x")), `matcher 1: "Source" is not a matcher name`},
		{"label without key", window(eq("labels.", "x")), `matcher 1: "labels." has no label key`},
		{"label key with a space", window(eq("labels.my river", "x")), `matcher 1: "labels.my river" is not a matcher name`},
		{"label key with a slash", window(eq("labels.a/b", "x")), `matcher 1: "labels.a/b" is not a matcher name`},
		{"bad regex", window(src, re("source", "aq-(")), `matcher 2 (source): value "aq-(" is not a valid RE2 expression`},
		{"no backreferences in RE2", window(re("source", `(a)\1`)), "matcher 1 (source): value"},
		{"value too long", window(eq("source", strings.Repeat("a", MaxValueLen+1))),
			"matcher 1 (source): value is 257 characters, at most 256"},
		{"equal to empty", window(eq("source", "")), "at least one matcher must not match the empty string"},
		{"not equal to a value", window(neq("source", "x")), "at least one matcher must not match the empty string"},
		{"regex of anything", window(re("source", ".*"), eq("area", "")), "at least one matcher must not match the empty string"},
		{"negated regex of something", window(notRe("source", ".+")), "at least one matcher must not match the empty string"},
		{"no end", with(func(s *Silence) { s.EndsAt = time.Time{} }, src), "endsAt: required"},
		{"ends when it starts", with(func(s *Silence) { s.EndsAt = s.StartsAt }, src), "endsAt: 2026-12-01T08:00:00Z is not after startsAt 2026-12-01T08:00:00Z"},
		{"ends before it starts", with(func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Second) }, src), "is not after startsAt"},
		{"longer than 30 days", with(func(s *Silence) { s.EndsAt = s.StartsAt.Add(MaxDuration + time.Second) }, src),
			"endsAt: the silence lasts 720h0m1s, at most 30 days"},
		{"ended", with(func(s *Silence) { s.StartsAt, s.EndsAt = now.Add(-2*time.Hour), now.Add(-time.Second) }, src),
			"endsAt: 2026-12-01T06:59:59Z is in the past"},
		{"no comment", with(func(s *Silence) { s.Comment = "" }, src), "comment: required"},
		{"blank comment", with(func(s *Silence) { s.Comment = " \t\n" }, src), "comment: required"},
		{"comment too long", with(func(s *Silence) { s.Comment = strings.Repeat("ư", MaxCommentLen+1) }, src),
			"comment: 501 characters, at most 500"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.sil.Validate(now)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.err != "" && err == nil:
				t.Fatalf("Validate accepted it, want %q", c.err)
			case c.err != "" && !strings.Contains(err.Error(), c.err):
				t.Fatalf("Validate: %v\nwant it to contain %q", err, c.err)
			}
		})
	}
}

func TestValidateZeroStart(t *testing.T) {
	s := Silence{Matchers: []Matcher{eq("area", "hue")}, EndsAt: t0.Add(time.Hour), Comment: "c"}
	if err := s.Validate(t0); err != nil {
		t.Fatal(err)
	}
	if !s.StartsAt.Equal(t0) {
		t.Fatalf("StartsAt = %v, want now %v", s.StartsAt, t0)
	}
	// A window longer than 30 days from now is too long even without a start.
	s = Silence{Matchers: []Matcher{eq("area", "hue")}, EndsAt: t0.Add(MaxDuration + time.Hour), Comment: "c"}
	if err := s.Validate(t0); err == nil {
		t.Fatal("a 30-day-and-an-hour silence starting now was accepted")
	}
}

func TestMatches(t *testing.T) {
	alert := fields{"rule": "pm25-high", "severity": "critical", "kind": "aq", "area": "hue",
		"source": "aq-phu-bai-1", "labels.river": "huong"}
	cases := []struct {
		name string
		ms   []Matcher
		want bool
	}{
		{"equal", []Matcher{eq("source", "aq-phu-bai-1")}, true},
		{"equal, other value", []Matcher{eq("source", "aq-phu-bai-2")}, false},
		{"equal is not a prefix", []Matcher{eq("source", "aq")}, false},
		{"not equal", []Matcher{neq("source", "aq-phu-bai-2")}, true},
		{"not equal, same value", []Matcher{neq("source", "aq-phu-bai-1")}, false},
		{"regex", []Matcher{re("source", "aq-.*")}, true},
		{"regex is anchored at the end", []Matcher{re("source", "aq")}, false},
		{"regex is anchored at the start", []Matcher{re("source", "phu-bai-1")}, false},
		{"regex alternation stays anchored", []Matcher{re("source", "x|aq-phu-bai-1")}, true},
		{"regex alternation, no full match", []Matcher{re("source", "aq|x")}, false},
		{"negated regex", []Matcher{notRe("source", "aq-.*")}, false},
		{"negated regex, no match", []Matcher{notRe("source", "wx-.*")}, true},
		{"label", []Matcher{eq("labels.river", "huong")}, true},
		{"label regex", []Matcher{re("labels.river", "huong|perfume")}, true},
		{"absent label is empty", []Matcher{eq("labels.lake", "")}, true},
		{"absent label is not a value", []Matcher{eq("labels.lake", "tam-giang")}, false},
		{"absent label differs from a value", []Matcher{neq("labels.lake", "tam-giang")}, true},
		{"absent field", []Matcher{eq("metric", "pm25")}, false},
		{"all must hold", []Matcher{eq("area", "hue"), eq("severity", "critical"), re("source", "aq-.*")}, true},
		{"one fails", []Matcher{eq("area", "hue"), eq("severity", "warning")}, false},
		{"no matcher matches nothing", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := window(c.ms...)
			if got := s.Matches(alert); got != c.want {
				t.Errorf("unvalidated: Matches = %v, want %v", got, c.want)
			}
			compiled, err := compileAll(c.ms)
			if err != nil {
				t.Fatal(err)
			}
			s.compiled = compiled
			if got := s.Matches(alert); got != c.want {
				t.Errorf("compiled: Matches = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMatchesBadRegexMatchesNothing(t *testing.T) {
	s := window(notRe("source", "("))
	if s.Matches(fields{"source": "x"}) {
		t.Fatal("a silence with an invalid regex matched")
	}
}

// Matching runs for every alert transition: it must not allocate.
func TestMatchesAllocs(t *testing.T) {
	s := window(eq("area", "hue"), re("source", "aq-.*"), notRe("labels.river", "perfume|song-bo"))
	if err := s.Validate(t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	hit := fields{"area": "hue", "source": "aq-phu-bai-1", "labels.river": "huong"}
	miss := fields{"area": "hue", "source": "wx-1"}
	if !s.Matches(hit) || s.Matches(miss) {
		t.Fatal("unexpected match results")
	}
	n := testing.AllocsPerRun(200, func() {
		s.Matches(hit)
		s.Matches(miss)
	})
	if n != 0 {
		t.Fatalf("Matches allocates %.1f times a call pair", n)
	}
}

func TestState(t *testing.T) {
	s := window(eq("area", "hue"))
	cases := []struct {
		at   time.Time
		want string
	}{
		{s.StartsAt.Add(-time.Hour), StatePending},
		{s.StartsAt.Add(-time.Nanosecond), StatePending},
		{s.StartsAt, StateActive},
		{s.EndsAt.Add(-time.Nanosecond), StateActive},
		{s.EndsAt, StateExpired},
		{s.EndsAt.Add(time.Hour), StateExpired},
	}
	for _, c := range cases {
		if got := s.State(c.at); got != c.want {
			t.Errorf("State(%v) = %s, want %s", c.at, got, c.want)
		}
	}
}

// The API shape is Alertmanager's v2 silence; the bucket's record leaves
// the status out.
func TestJSON(t *testing.T) {
	s := window(Matcher{Name: "source", Value: "aq-phu-bai-1", IsEqual: true})
	s.ID, s.CreatedBy, s.UpdatedAt = "id-1", "lan", t0.Add(-time.Minute)
	stored, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"id-1","matchers":[{"name":"source","value":"aq-phu-bai-1","isRegex":false,"isEqual":true}],` +
		`"startsAt":"2026-12-01T08:00:00Z","endsAt":"2026-12-01T12:00:00Z","createdBy":"lan",` +
		`"comment":"bảo trì trạm","updatedAt":"2026-12-01T07:59:00Z"}`
	if string(stored) != want {
		t.Fatalf("stored record\n got %s\nwant %s", stored, want)
	}
	s.Status = Status{State: s.State(t0)}
	shown, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(want, "}") + `,"status":{"state":"active"}}`; string(shown) != want {
		t.Fatalf("API silence\n got %s\nwant %s", shown, want)
	}
	back, err := decode("id-1", shown)
	if err != nil {
		t.Fatal(err)
	}
	if back.Status != (Status{}) || !back.Matches(fields{"source": "aq-phu-bai-1"}) || len(back.compiled) != 1 {
		t.Fatalf("decoded %+v", back)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 36 || id[14] != '4' || !validID(id) || seen[id] {
			t.Fatalf("id %q: not a fresh version 4 UUID", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "a.b", "a*", "a>", "a b", strings.Repeat("a", 65)} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}

func TestParseMatcher(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"source=aq-phu-bai-1", "source=aq-phu-bai-1"},
		{`area=~"phu-.*"`, "area=~phu-.*"},
		{"severity!=info", "severity!=info"},
		{"rule!~flood.*", "rule!~flood.*"},
		{"labels.river=huong", "labels.river=huong"},
		{"source", "not a matcher"},
		{"=x", "not a matcher"},
	} {
		m, err := ParseMatcher(tt.in)
		got := m.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("ParseMatcher(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
