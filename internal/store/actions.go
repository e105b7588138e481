package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
)

// ActionRow is one row of alert_actions, the audit trail of CONTRACT.md
// section 8. A silence's rows have no fingerprint, the silence id as
// AlertID and seq 0.
type ActionRow struct {
	At          time.Time
	Fingerprint string
	AlertID     string
	Seq         uint32
	Action      string
	Actor       string
	Role        string
	Comment     string
	Details     string // JSON text
}

// AlertActionRow is the audit row of a transition that records an action.
func AlertActionRow(a *alert.Alert) ActionRow {
	act := a.Action
	details := "{}"
	if act.To != "" || act.Kind == alert.ActionAssign {
		b, _ := json.Marshal(map[string]string{"to": act.To}) // a string map always encodes
		details = string(b)
	}
	return ActionRow{At: act.At, Fingerprint: a.Fingerprint, AlertID: a.ID, Seq: uint32(a.Seq), Action: string(act.Kind),
		Actor: act.Actor, Role: act.Role, Comment: act.Comment, Details: details}
}

const actionsInsert = "INSERT INTO alert_actions (at, at_ms, fingerprint, alert_id, seq, action, actor, role, comment, details)"

// InsertActions appends audit rows. A row written again (a retry) has the
// key of the first and is the same row under FINAL.
func (s *Store) InsertActions(ctx context.Context, rows []ActionRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	var (
		at                     = make([]time.Time, n)
		atMs                   = make([]uint16, n)
		fp, id, action, actor  = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		role, comment, details = make([]string, n), make([]string, n), make([]string, n)
		seq                    = make([]uint32, n)
	)
	for i, r := range rows {
		at[i], atMs[i] = r.At.UTC().Truncate(time.Second), uint16(r.At.Nanosecond()/int(time.Millisecond))
		fp[i], id[i], seq[i], action[i], actor[i] = r.Fingerprint, r.AlertID, r.Seq, r.Action, r.Actor
		role[i], comment[i], details[i] = r.Role, r.Comment, r.Details
	}
	return s.insertColumns(ctx, "alert_actions", actionsInsert, []any{at, atMs, fp, id, seq, action, actor, role, comment, details})
}

// MaxHistory bounds one history answer: a fingerprint that fired every
// few minutes for a year still answers quickly, newest entries kept.
const MaxHistory = 5000

// History returns every transition and action of a fingerprint, oldest
// first (at most MaxHistory, the newest). A transition that records an
// action appears once, as the action.
func (s *Store) History(ctx context.Context, fingerprint string) ([]alert.HistoryEntry, error) {
	var out []alert.HistoryEntry
	rows, err := s.conn.Query(ctx, "SELECT updated_at, id, seq, status, severity, value, summary FROM alerts FINAL "+
		"WHERE fingerprint = ? AND action = '' ORDER BY updated_at DESC, seq DESC LIMIT ?", fingerprint, MaxHistory)
	if err != nil {
		return nil, fmt.Errorf("store: read alert history: %w", err)
	}
	for rows.Next() {
		e := alert.HistoryEntry{Type: "transition"}
		var v float64
		if err := rows.Scan(&e.At, &e.AlertID, &e.Seq, &e.Status, &e.Severity, &v, &e.Summary); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: read alert history: %w", err)
		}
		e.Value = &v
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read alert history: %w", err)
	}
	rows, err = s.conn.Query(ctx, "SELECT at, at_ms, alert_id, seq, action, actor, role, comment, details FROM alert_actions FINAL "+
		"WHERE fingerprint = ? ORDER BY at DESC, seq DESC LIMIT ?", fingerprint, MaxHistory)
	if err != nil {
		return nil, fmt.Errorf("store: read alert actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e := alert.HistoryEntry{Type: "action"}
		var ms uint16
		var details string
		if err := rows.Scan(&e.At, &ms, &e.AlertID, &e.Seq, &e.Action, &e.Actor, &e.Role, &e.Comment, &details); err != nil {
			return nil, fmt.Errorf("store: read alert actions: %w", err)
		}
		e.At = e.At.Add(time.Duration(ms) * time.Millisecond).UTC()
		var d struct {
			To string `json:"to"`
		}
		if json.Unmarshal([]byte(details), &d) == nil {
			e.To = d.To
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read alert actions: %w", err)
	}
	// Every entry is a transition of its episode (an action has its own
	// seq), and the episodes of a fingerprint never overlap: order by the
	// episode's start, then by seq. Times alone would not do: updated_at is
	// whole seconds and an action's time is when it was asked for.
	first := map[string]time.Time{}
	for _, e := range out {
		if t, ok := first[e.AlertID]; !ok || e.At.Before(t) {
			first[e.AlertID] = e.At
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.AlertID != b.AlertID {
			if ta, tb := first[a.AlertID], first[b.AlertID]; !ta.Equal(tb) {
				return ta.Before(tb)
			}
			return a.AlertID < b.AlertID
		}
		return a.Seq < b.Seq
	})
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	return out, nil
}

// SilenceActionKeys returns "<silence id>:<action>" for every silence row
// of alert_actions at or after since: start-up writes only those the
// bucket knows of and the table lacks.
func (s *Store) SilenceActionKeys(ctx context.Context, since time.Time) (map[string]bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT alert_id, action FROM alert_actions WHERE fingerprint = '' AND at >= toDateTime(?, 'UTC')",
		since.Unix())
	if err != nil {
		return nil, fmt.Errorf("store: read silence actions: %w", err)
	}
	defer rows.Close()
	keys := map[string]bool{}
	for rows.Next() {
		var id, action string
		if err := rows.Scan(&id, &action); err != nil {
			return nil, fmt.Errorf("store: read silence actions: %w", err)
		}
		keys[id+":"+action] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read silence actions: %w", err)
	}
	return keys, nil
}
