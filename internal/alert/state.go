// Package alert holds the alert lifecycle: one small state machine per
// fingerprint (rule × group) that turns evaluated values into transitions
// (firing, severity change, resolved), in the manner of Prometheus'
// rules/alerting.go plus hysteresis and an escalation ladder.
package alert

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Severity of an alert.
type Severity string

// Severities, lowest first.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Op compares a value with a threshold.
type Op string

// The comparison operators of the rules file: the four orders, which
// threshold rules use, and equality, which only an event rule's when
// conditions may also use.
const (
	Greater      Op = ">"
	GreaterEqual Op = ">="
	Less         Op = "<"
	LessEqual    Op = "<="
	Equal        Op = "=="
	NotEqual     Op = "!="
)

// Holds reports whether value op threshold.
func (op Op) Holds(value, threshold float64) bool {
	switch op {
	case Greater:
		return value > threshold
	case GreaterEqual:
		return value >= threshold
	case Less:
		return value < threshold
	case LessEqual:
		return value <= threshold
	}
	return false
}

// valid reports whether op is one of the four order comparisons, all a
// threshold takes; the rules file and Threshold.Validate both ask it.
func (op Op) valid() bool {
	switch op {
	case Greater, GreaterEqual, Less, LessEqual:
		return true
	}
	return false
}

// rising is true for > and >=: higher values are worse.
func (op Op) rising() bool { return op == Greater || op == GreaterEqual }

// Level is one rung of an escalation ladder.
type Level struct {
	Threshold float64
	Severity  Severity
	Name      string // for summaries, e.g. "báo động 2"; empty = the severity
}

// Threshold is what a threshold rule asks of its evaluated value.
type Threshold struct {
	Op Op
	// Levels from the least to the most severe; one level for a plain rule.
	Levels []Level
	// Clear is the hysteresis threshold: once firing, the alert resolves
	// only when the value no longer passes Clear (for ">" rules: falls to or
	// below it). The same margin (first threshold − Clear) applies when
	// stepping down the ladder, so a value hovering at a rung does not flap.
	// Without Clear the alert resolves as soon as the first level fails.
	Clear *float64
	// For is how long a level must hold before the alert fires.
	For time.Duration
}

// Validate reports a ladder that cannot work.
func (th Threshold) Validate() error {
	if !th.Op.valid() {
		return fmt.Errorf("op %q is not one of >, >=, <, <=", th.Op)
	}
	if len(th.Levels) == 0 {
		return fmt.Errorf("a threshold rule needs at least one level")
	}
	for i := 1; i < len(th.Levels); i++ {
		prev, cur := th.Levels[i-1].Threshold, th.Levels[i].Threshold
		if th.Op.rising() && cur <= prev || !th.Op.rising() && cur >= prev {
			return fmt.Errorf("level %d threshold %g must be beyond level %d threshold %g", i+1, cur, i, prev)
		}
	}
	if th.Clear != nil {
		first := th.Levels[0].Threshold
		if th.Op.rising() && *th.Clear > first || !th.Op.rising() && *th.Clear < first {
			return fmt.Errorf("clear %g must be on the safe side of the first threshold %g", *th.Clear, first)
		}
	}
	return nil
}

// margin is the hysteresis distance, in the direction of "safer".
func (th Threshold) margin() float64 {
	if th.Clear == nil {
		return 0
	}
	if th.Op.rising() {
		return th.Levels[0].Threshold - *th.Clear
	}
	return *th.Clear - th.Levels[0].Threshold
}

// level returns the index of the most severe level value reaches, or -1.
func (th Threshold) level(value float64) int {
	for i := len(th.Levels) - 1; i >= 0; i-- {
		if th.Op.Holds(value, th.Levels[i].Threshold) {
			return i
		}
	}
	return -1
}

// holdsWithMargin: does the value still hold level i once hysteresis is
// taken into account (for stepping down or resolving)?
func (th Threshold) holdsWithMargin(value float64, i int) bool {
	t := th.Levels[i].Threshold
	m := th.margin()
	if m == 0 {
		return th.Op.Holds(value, t)
	}
	if th.Op.rising() {
		return value > t-m
	}
	return value < t+m
}

// State of a tracker.
type State int

// The states of the lifecycle.
const (
	Inactive State = iota
	Pending
	Firing
)

func (s State) String() string { return [...]string{"inactive", "pending", "firing"}[s] }

// Status of a transition.
type Status string

// Transition statuses of the contract.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Transition is one published change of an alert.
type Transition struct {
	ID        string
	Seq       int // 1 for the first firing, +1 for each change after it
	Status    Status
	Severity  Severity
	Value     float64
	Threshold float64
	StartsAt  time.Time
	EndsAt    time.Time // zero while firing
	At        time.Time
}

// Tracker is the lifecycle of one fingerprint. The zero value is inactive.
type Tracker struct {
	Fingerprint string
	state       State
	since       time.Time // pending since
	level       int       // current level while firing
	id          string
	seq         int
	startsAt    time.Time
}

// State returns the tracker's state.
func (tr *Tracker) State() State { return tr.state }

// Observe feeds one evaluation at time now and returns the transition it
// causes, if any: firing after For, a severity change of the same alert,
// or resolved once the value clears.
//
// mayLower is false for an evaluation over a partial (early) pane: it may
// start a pending timer, fire or escalate, but only a final pane may
// de-escalate, resolve or reset a pending timer, so an intermediate result
// never undoes anything.
func (tr *Tracker) Observe(now time.Time, value float64, th Threshold, mayLower bool) (Transition, bool) {
	reached := th.level(value)
	switch tr.state {
	case Inactive, Pending:
		if reached < 0 {
			if mayLower {
				tr.state = Inactive
			}
			return Transition{}, false
		}
		if tr.state == Inactive {
			tr.state, tr.since = Pending, now
		}
		if now.Sub(tr.since) < th.For {
			return Transition{}, false
		}
		return tr.fire(now, reached, value, th), true
	}
	// Firing: escalate at once; step down or resolve only past the margin.
	next := tr.level
	switch {
	case reached > tr.level:
		next = reached
	case !mayLower:
	default:
		for next >= 0 && !th.holdsWithMargin(value, next) {
			next--
		}
	}
	if next < 0 {
		return tr.resolve(now, value, th), true
	}
	if next == tr.level {
		return Transition{}, false
	}
	tr.level = next
	tr.seq++
	return tr.transition(now, StatusFiring, value, th), true
}

// fire opens a new episode at level.
func (tr *Tracker) fire(now time.Time, level int, value float64, th Threshold) Transition {
	tr.open(now, level)
	return tr.transition(now, StatusFiring, value, th)
}

// resolve ends the firing episode.
func (tr *Tracker) resolve(now time.Time, value float64, th Threshold) Transition {
	tr.close()
	t := tr.transition(now, StatusResolved, value, th)
	t.EndsAt = now
	return t
}

// The lifecycle's moves. Every rule kind goes through them, so an episode
// opens, changes, is acknowledged and ends in one place: the engine reads
// a tracker but never writes one.

// open starts an episode at level: firing, seq 1, a new id.
func (tr *Tracker) open(at time.Time, level int) {
	tr.state, tr.level, tr.seq, tr.startsAt = Firing, level, 1, at
	tr.id = alertID(tr.Fingerprint, at)
}

// close ends the episode: the next transition (seq) is its last.
func (tr *Tracker) close() {
	tr.seq++
	tr.state = Inactive
}

// touch is a change of the episode that is not a new decision on the data
// (an acknowledgement): the next seq, same id, same level.
func (tr *Tracker) touch() { tr.seq++ }

// cancel drops a pending timer.
func (tr *Tracker) cancel() {
	if tr.state == Pending {
		tr.state = Inactive
	}
}

// clamp keeps the level inside a ladder of n levels (a reloaded rule may
// have fewer).
func (tr *Tracker) clamp(n int) {
	if tr.level >= n {
		tr.level = n - 1
	}
}

// restorePending makes an inactive tracker pending since a time again (a
// timer rebuilt after a restart).
func (tr *Tracker) restorePending(since time.Time) {
	tr.state, tr.since = Pending, since
}

// The tracker as the engine reads it.
func (tr *Tracker) firing() bool           { return tr.state == Firing }
func (tr *Tracker) levelIndex() int        { return tr.level }
func (tr *Tracker) episode() (string, int) { return tr.id, tr.seq }
func (tr *Tracker) started() time.Time     { return tr.startsAt }

// restoreFiring makes the tracker continue an episode read back from
// IOC_ALERTS after a restart.
func (tr *Tracker) restoreFiring(id string, seq, level int, startsAt time.Time) {
	tr.state, tr.id, tr.seq, tr.level, tr.startsAt = Firing, id, seq, level, startsAt
}

func (tr *Tracker) transition(now time.Time, status Status, value float64, th Threshold) Transition {
	lv := th.Levels[tr.level]
	return Transition{ID: tr.id, Seq: tr.seq, Status: status, Severity: lv.Severity, Value: value,
		Threshold: lv.Threshold, StartsAt: tr.startsAt, At: now}
}

// alertID is stable for (fingerprint, start): a rebuilt tracker after a
// restart names the same episode the same way.
func alertID(fingerprint string, start time.Time) string {
	h := sha256.New()
	h.Write([]byte(fingerprint))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start.UnixMilli()))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:12])
}
