// Package silence keeps the operators' silences of CONTRACT.md section 8:
// Alertmanager v2-shaped maintenance windows that mark the alerts they
// match without changing any decision about them. A Silence is validated
// and matched here; the Store shares the set between replicas through a
// JetStream KV bucket.
package silence

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// The states of a silence, as Alertmanager names them.
const (
	StatePending = "pending"
	StateActive  = "active"
	StateExpired = "expired"
)

// Limits of a silence. MaxDuration keeps a forgotten silence from hiding
// a station for good; the others bound what one record may cost.
const (
	MaxDuration   = 30 * 24 * time.Hour
	MaxValueLen   = 256
	MaxCommentLen = 500
)

// labelsPrefix starts the matcher names that select a label of the alert.
const labelsPrefix = "labels."

// fieldNames are the matcher names besides labels.<key>.
var fieldNames = []string{"rule", "severity", "kind", "type", "metric", "area", "source", "category"}

// nameList is the list of names that an error about a name shows.
const nameList = "rule, severity, kind, type, metric, area, source, category, labels.<key>"

// labelKey is what may follow "labels." in a matcher name.
var labelKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Matcher is one condition of a silence: the field Name equals Value (or
// matches it as an anchored RE2 expression when IsRegex); IsEqual false
// negates the condition.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Status is the computed part of a silence in the API, as Alertmanager's
// {"state": ...}.
type Status struct {
	State string `json:"state"`
}

// Silence is a silence as the API shows it. Status is filled by the Store
// when it hands a silence out; it is not stored, being a matter of time.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Beyond Alertmanager's shape, for the audit trail (alert_actions):
	// when it was made and the creator's role, and who expired it early.
	CreatedAt   time.Time `json:"createdAt,omitzero"`
	CreatedRole string    `json:"createdRole,omitempty"`
	ExpiredBy   string    `json:"expiredBy,omitempty"`
	ExpiredRole string    `json:"expiredRole,omitempty"`
	Status      Status    `json:"status,omitzero"` // omitted in the bucket

	// compiled is Matchers made ready for matching, set by Validate and by
	// the Store; Matches compiles on the fly (and allocates) without it.
	compiled []matcher
}

// Actor is who creates or expires a silence: the API identity.
type Actor struct {
	Name, Role string
}

// Fields is what a silence matches against: Field returns the value of a
// matcher name (rule, severity, kind, type, metric, area, source,
// category, labels.<key>); a field the alert lacks is "", as an absent
// label is in Alertmanager.
type Fields interface {
	Field(name string) string
}

// matcher is a Matcher with its expression compiled.
type matcher struct {
	name    string
	value   string
	re      *regexp.Regexp // nil unless the matcher is a regex
	isEqual bool
}

func (m *matcher) matches(v string) bool {
	var ok bool
	if m.re != nil {
		ok = m.re.MatchString(v)
	} else {
		ok = v == m.value
	}
	return ok == m.isEqual
}

// validName reports whether name is a matcher name.
func validName(name string) bool {
	if key, ok := strings.CutPrefix(name, labelsPrefix); ok {
		return labelKey.MatchString(key)
	}
	for _, n := range fieldNames {
		if name == n {
			return true
		}
	}
	return false
}

// compile prepares one matcher; i is its 1-based position for errors.
func compile(i int, m Matcher) (matcher, error) {
	if !validName(m.Name) {
		if m.Name == labelsPrefix {
			return matcher{}, fmt.Errorf("matcher %d: %q has no label key (labels.<key>, key of A-Z a-z 0-9 _ . -)", i, m.Name)
		}
		return matcher{}, fmt.Errorf("matcher %d: %q is not a matcher name (%s)", i, m.Name, nameList)
	}
	if n := utf8.RuneCountInString(m.Value); n > MaxValueLen {
		return matcher{}, fmt.Errorf("matcher %d (%s): value is %d characters, at most %d", i, m.Name, n, MaxValueLen)
	}
	c := matcher{name: m.Name, value: m.Value, isEqual: m.IsEqual}
	if m.IsRegex {
		// Anchored as Alertmanager does, so "aq" does not match "aq-x".
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return matcher{}, fmt.Errorf("matcher %d (%s): value %q is not a valid RE2 expression: %v", i, m.Name, m.Value, err)
		}
		c.re = re
	}
	return c, nil
}

// compileAll prepares every matcher; it does not check the matcher set as
// a whole.
func compileAll(ms []Matcher) ([]matcher, error) {
	out := make([]matcher, len(ms))
	for i, m := range ms {
		c, err := compile(i+1, m)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// Validate checks a silence as the API receives it and prepares it for
// matching; a zero StartsAt becomes now. Errors name the matcher (counted
// from 1) or the field at fault.
func (s *Silence) Validate(now time.Time) error {
	if len(s.Matchers) == 0 {
		return errors.New("matchers: at least one matcher is required")
	}
	compiled, err := compileAll(s.Matchers)
	if err != nil {
		return err
	}
	// A silence whose every matcher holds for "" would match every alert
	// lacking those fields: Alertmanager refuses it, so do we.
	empty := true
	for i := range compiled {
		empty = empty && compiled[i].matches("")
	}
	if empty {
		return errors.New("matchers: at least one matcher must not match the empty string")
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	switch {
	case s.EndsAt.IsZero():
		return errors.New("endsAt: required")
	case !s.EndsAt.After(s.StartsAt):
		return fmt.Errorf("endsAt: %s is not after startsAt %s", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))
	case s.EndsAt.Sub(s.StartsAt) > MaxDuration:
		return fmt.Errorf("endsAt: the silence lasts %s, at most 30 days (720h)", s.EndsAt.Sub(s.StartsAt).Round(time.Second))
	case s.EndsAt.Before(now):
		return fmt.Errorf("endsAt: %s is in the past", s.EndsAt.Format(time.RFC3339))
	}
	switch n := utf8.RuneCountInString(s.Comment); {
	case strings.TrimSpace(s.Comment) == "":
		return errors.New("comment: required")
	case n > MaxCommentLen:
		return fmt.Errorf("comment: %d characters, at most %d", n, MaxCommentLen)
	}
	s.compiled = compiled
	return nil
}

// Matches reports whether every matcher holds for f. It does not look at
// the time: see State. A silence that was not validated (nor came from
// the Store) is compiled for this call only; one with a bad matcher
// matches nothing.
func (s *Silence) Matches(f Fields) bool {
	ms := s.compiled
	if len(ms) != len(s.Matchers) {
		var err error
		if ms, err = compileAll(s.Matchers); err != nil {
			return false
		}
	}
	if len(ms) == 0 {
		return false // no condition is not "everything"
	}
	for i := range ms {
		if !ms[i].matches(f.Field(ms[i].name)) {
			return false
		}
	}
	return true
}

// State is the state of the silence at now. The window is half-open,
// [StartsAt, EndsAt): a silence expired "now" no longer applies now.
func (s *Silence) State(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return StatePending
	case now.Before(s.EndsAt):
		return StateActive
	default:
		return StateExpired
	}
}

// ParseMatcher reads a matcher as amtool writes one: name=value,
// name!=value, name=~regex or name!~regex (a value may be in quotes).
func ParseMatcher(s string) (Matcher, error) {
	for _, op := range []struct {
		sep          string
		regex, equal bool
	}{{"!~", true, false}, {"=~", true, true}, {"!=", false, false}, {"=", false, true}} {
		if name, value, ok := strings.Cut(s, op.sep); ok && name != "" {
			return Matcher{Name: name, Value: strings.Trim(value, `"`), IsRegex: op.regex, IsEqual: op.equal}, nil
		}
	}
	return Matcher{}, fmt.Errorf("%q is not a matcher: write name=value, name!=value, name=~regex or name!~regex", s)
}

// String writes the matcher back as ParseMatcher reads it.
func (m Matcher) String() string {
	op := "="
	switch {
	case m.IsRegex && m.IsEqual:
		op = "=~"
	case m.IsRegex:
		op = "!~"
	case !m.IsEqual:
		op = "!="
	}
	return m.Name + op + m.Value
}
