package alert

import "time"

// HistoryEntry is one line of an alert's history (CONTRACT.md section 8,
// GET /api/v1/alerts/{fingerprint}/history): a transition decided on the
// data, or an operator's action with its actor.
type HistoryEntry struct {
	At      time.Time `json:"at"`
	Type    string    `json:"type"` // transition or action
	AlertID string    `json:"alertId"`
	Seq     uint32    `json:"seq"`

	Status   string   `json:"status,omitempty"`
	Severity string   `json:"severity,omitempty"`
	Value    *float64 `json:"value,omitempty"`
	Summary  string   `json:"summary,omitempty"`

	Action  string `json:"action,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Role    string `json:"role,omitempty"`
	Comment string `json:"comment,omitempty"`
	To      string `json:"to,omitempty"`
}
