package alert

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/subject"
)

// Alert is one transition of an alert, in the JSON shape of CONTRACT.md
// section 6: what is published on ioc.alerts.<severity>.<kind>.<area>,
// written to the alerts table and served by the HTTP API.
type Alert struct {
	ID          string            `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Status      Status            `json:"status"`
	Severity    Severity          `json:"severity"`
	Category    string            `json:"category,omitempty"`
	SubCategory string            `json:"subCategory,omitempty"`
	Kind        string            `json:"kind"`
	Type        string            `json:"type"`
	Metric      string            `json:"metric"`
	Area        string            `json:"area"`
	Source      string            `json:"source"`
	Value       float64           `json:"value"`
	Threshold   float64           `json:"threshold"`
	Op          string            `json:"op"`
	Agg         string            `json:"agg"`
	Window      string            `json:"window"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      *time.Time        `json:"endsAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	Summary     string            `json:"summary"`
	Labels      map[string]string `json:"labels"`

	// An operator's acknowledgement of a firing alert: published as a
	// transition of the same id, kept until the alert resolves, cleared
	// when its severity rises (a worse situation needs a new look).
	AcknowledgedBy string     `json:"acknowledgedBy,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt,omitempty"`
	AckComment     string     `json:"ackComment,omitempty"`
	// Who is handling it (a person or a unit such as pccc-hue), kept
	// across escalations until the alert resolves.
	Assignee   string     `json:"assignee,omitempty"`
	AssignedBy string     `json:"assignedBy,omitempty"`
	AssignedAt *time.Time `json:"assignedAt,omitempty"`
	// Comments counts the operators' comments on this episode; their text
	// is in the alert_actions table.
	Comments int `json:"comments,omitempty"`
	// SilencedBy lists the silences active when the transition was
	// decided (on the board: those active now). A silence changes no
	// decision; a notifier may skip a silenced alert (Ioc-Silenced header).
	SilencedBy []string `json:"silencedBy,omitempty"`

	// Action is the operator's action this transition records, nil for a
	// decision on the data. It travels in the Ioc-Action header.
	Action *Action `json:"-"`

	// Seq numbers the transitions of one id from 1; it travels in the
	// Nats-Msg-Id header (<id>:<seq>), not in the JSON.
	Seq int `json:"-"`
	// EvalTime is the event time the transition was decided at (a pane
	// end, an event's time, the engine clock). A rebuilt engine skips
	// evaluations older than it, so a replay after a restart does not
	// repeat or undo a transition. It travels in the Ioc-Eval-Time header.
	EvalTime time.Time `json:"-"`
	// Early tells a threshold decision on a partial window (an early
	// rule's), which does not stand for the final decision at its pane end:
	// after a restart that decision is still to be taken. It travels in the
	// Ioc-Early header.
	Early bool `json:"-"`
}

// MsgID is the Nats-Msg-Id of the transition: JetStream drops a
// republication of the same transition after a crash.
func (a *Alert) MsgID() string { return a.ID + ":" + strconv.Itoa(a.Seq) }

// Subject is where the transition is published.
func (a *Alert) Subject() string {
	return subject.Alert(string(a.Severity), token(a.Kind), token(a.Area))
}

// token keeps a subject token valid when a field is empty (a rule grouped
// over several areas has no single area).
func token(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

// JSON encodes the alert as published. It fails only on a non-finite
// value, which the engine never produces.
func (a *Alert) JSON() ([]byte, error) { return json.Marshal(a) }

// Latest returns the last transition of each fingerprint among
// transitions in publication order.
func Latest(all []Alert) []Alert {
	at := map[string]int{}
	var out []Alert
	for _, a := range all {
		if i, ok := at[a.Fingerprint]; ok {
			out[i] = a
			continue
		}
		at[a.Fingerprint] = len(out)
		out = append(out, a)
	}
	return out
}

// Field is the alert's value of a silence matcher's name: rule, severity,
// kind, type, metric, area, source, category or labels.<key> ("" for any
// other name and for an absent label, as in Alertmanager).
func (a *Alert) Field(name string) string {
	switch name {
	case "rule":
		return a.Rule
	case "severity":
		return string(a.Severity)
	case "kind":
		return a.Kind
	case "type":
		return a.Type
	case "metric":
		return a.Metric
	case "area":
		return a.Area
	case "source":
		return a.Source
	case "category":
		return a.Category
	}
	if key, ok := strings.CutPrefix(name, "labels."); ok {
		return a.Labels[key]
	}
	return ""
}

// Silencer tells which silences match an alert now; the engine records
// them in each transition it decides.
type Silencer interface {
	SilencedBy(a *Alert) []string
}
