package alert

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// ActionKind names what an operator did to a firing alert (CONTRACT.md
// section 8); the names are the alert_actions table's action column.
type ActionKind string

// The actions on an alert. Silences have their own two (silence,
// unsilence), written by the silence store, not by the engine.
const (
	ActionAck     ActionKind = "ack"
	ActionUnack   ActionKind = "unack"
	ActionAssign  ActionKind = "assign"
	ActionComment ActionKind = "comment"
)

// Limits of an action's text, so that a board row and an audit row stay
// readable and a client cannot grow the stream with one request.
const (
	MaxCommentRunes  = 2000
	MaxAssigneeRunes = 100
	MaxActorRunes    = 100
)

// Action is an operator's action on a firing alert. It is published as a
// transition of the alert (the Ioc-Action header carries it) and becomes
// one row of alert_actions when that transition is stored.
type Action struct {
	Kind    ActionKind `json:"action"`
	Actor   string     `json:"actor"`
	Role    string     `json:"role"`
	Comment string     `json:"comment,omitempty"` // a comment's text, or the note of an ack, unack, assign
	To      string     `json:"to,omitempty"`      // assign: the assignee; empty unassigns
	At      time.Time  `json:"at"`
}

// Validate checks an action as it arrives from a client: the HTTP API
// turns its error into a 400.
func (a *Action) Validate() error {
	switch a.Kind {
	case ActionAck, ActionUnack, ActionAssign, ActionComment:
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	n := utf8.RuneCountInString(a.Comment)
	switch {
	case a.Actor == "":
		return fmt.Errorf("an action needs an actor")
	case utf8.RuneCountInString(a.Actor) > MaxActorRunes:
		return fmt.Errorf("the actor must be at most %d characters", MaxActorRunes)
	case !utf8.ValidString(a.Comment) || !utf8.ValidString(a.To) || !utf8.ValidString(a.Actor):
		return fmt.Errorf("text must be UTF-8")
	case a.Kind == ActionComment && n == 0:
		return fmt.Errorf("the comment text must not be empty")
	case n > MaxCommentRunes:
		return fmt.Errorf("the comment must be at most %d characters", MaxCommentRunes)
	case utf8.RuneCountInString(a.To) > MaxAssigneeRunes:
		return fmt.Errorf("the assignee must be at most %d characters", MaxAssigneeRunes)
	case a.Kind != ActionAssign && a.To != "":
		return fmt.Errorf("only assign takes a \"to\"")
	}
	return nil
}

// Act records an operator's action on a firing alert; it takes effect (a
// transition of the same id) at the next evaluation, within 100 ms in
// iocd. An alert that is not firing by then is left alone. Safe to call
// from any goroutine (the HTTP API's). A zero At is the engine's clock.
func (e *Engine) Act(fingerprint string, a Action) {
	if a.At.IsZero() {
		a.At = e.cfg.Now().UTC()
	}
	e.mu.Lock()
	e.acts = append(e.acts, pendingAction{fingerprint, a})
	e.mu.Unlock()
}

// Acknowledge is Act with an acknowledgement by an operator.
func (e *Engine) Acknowledge(fingerprint, by, comment string) {
	e.Act(fingerprint, Action{Kind: ActionAck, Actor: by, Role: "operator", Comment: comment})
}

type pendingAction struct {
	fingerprint string
	Action
}

// operatorState is what operators have done to the current episode of a
// group. An escalation clears the acknowledgement only; a resolve clears
// it all (the next episode starts afresh).
type operatorState struct {
	ackBy, ackComment string
	ackAt             time.Time
	assignee          string
	assignedBy        string
	assignedAt        time.Time
	comments          int
}

func (e *Engine) act(p pendingAction) {
	for _, rs := range e.rules {
		for _, g := range rs.groups {
			if g.fp != p.fingerprint {
				continue
			}
			if !g.tr.firing() || !g.ops.apply(p.Action) {
				return
			}
			g.tr.touch()
			// Not a new decision on the data: the evaluation time stays.
			e.emit(rs, g, StatusFiring, g.lastEvalMs, g.value, g.firingThreshold)
			act := p.Action
			e.out[len(e.out)-1].Action = &act
			return
		}
	}
}

// apply changes the state by a; false when a changes nothing (a retried
// request), which then publishes nothing.
func (o *operatorState) apply(a Action) bool {
	switch a.Kind {
	case ActionAck:
		if o.ackBy == a.Actor && o.ackComment == a.Comment {
			return false
		}
		o.ackBy, o.ackComment, o.ackAt = a.Actor, a.Comment, a.At
	case ActionUnack:
		if o.ackBy == "" {
			return false
		}
		o.ackBy, o.ackComment, o.ackAt = "", "", time.Time{}
	case ActionAssign:
		if o.assignee == a.To && a.Comment == "" {
			return false
		}
		if a.To == "" {
			o.assignee, o.assignedBy, o.assignedAt = "", "", time.Time{}
		} else {
			o.assignee, o.assignedBy, o.assignedAt = a.To, a.Actor, a.At
		}
	case ActionComment:
		o.comments++
	default:
		return false
	}
	return true
}

// clearAck is what an escalation does: a worse situation needs a new look,
// by whoever is assigned to it.
func (o *operatorState) clearAck() { o.ackBy, o.ackComment, o.ackAt = "", "", time.Time{} }

// render copies the state into a transition.
func (o *operatorState) render(a *Alert) {
	if o.ackBy != "" {
		at := o.ackAt
		a.AcknowledgedBy, a.AcknowledgedAt, a.AckComment = o.ackBy, &at, o.ackComment
	}
	if o.assignee != "" {
		at := o.assignedAt
		a.Assignee, a.AssignedBy, a.AssignedAt = o.assignee, o.assignedBy, &at
	}
	a.Comments = o.comments
}

// restore reads the state back from the last transition of a firing alert.
func (o *operatorState) restore(a *Alert) {
	*o = operatorState{comments: a.Comments}
	if a.AcknowledgedBy != "" && a.AcknowledgedAt != nil {
		o.ackBy, o.ackComment, o.ackAt = a.AcknowledgedBy, a.AckComment, *a.AcknowledgedAt
	}
	if a.Assignee != "" && a.AssignedAt != nil {
		o.assignee, o.assignedBy, o.assignedAt = a.Assignee, a.AssignedBy, *a.AssignedAt
	}
}
