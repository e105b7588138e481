package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/window"
)

const alertsInsert = "INSERT INTO alerts (id, fingerprint, rule, status, severity, kind, type, metric, area, source, " +
	"value, threshold, starts_at, ends_at, updated_at, summary, seq, " +
	"category, sub_category, labels, op, agg, rule_window, acknowledged_by, acknowledged_at, ack_comment, " +
	"assignee, assigned_by, assigned_at, comments, silenced_by, action)"

// InsertAlerts writes alert transitions, and the alert_actions row of each
// that records an operator's action. A transition written twice (a retry
// after a crash) is one row under FINAL: (fingerprint, id, seq) is the
// sorting key of a ReplacingMergeTree, and its action row's key is the
// same. The actions go first: start-up rewrites what the alerts table
// lacks, so an action row is never missing behind a stored transition.
func (s *Store) InsertAlerts(ctx context.Context, alerts []alert.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	var acts []ActionRow
	for i := range alerts {
		if a := &alerts[i]; a.Action != nil {
			acts = append(acts, AlertActionRow(a))
		}
	}
	if err := s.InsertActions(ctx, acts); err != nil {
		return err
	}
	n := len(alerts)
	var (
		id, fp, rule, status, severity  = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		kind, typ, metric, area, source = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		value, threshold                = make([]float64, n), make([]float64, n)
		starts, updated                 = make([]time.Time, n), make([]time.Time, n)
		ends                            = make([]*time.Time, n)
		summary                         = make([]string, n)
		seq                             = make([]uint32, n)
		category, subCategory, labels   = make([]string, n), make([]string, n), make([]string, n)
		op, agg, window, ackBy, ackText = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ackAt, assignedAt               = make([]*time.Time, n), make([]*time.Time, n)
		assignee, assignedBy, action    = make([]string, n), make([]string, n), make([]string, n)
		comments                        = make([]uint32, n)
		silencedBy                      = make(stringArrays, n)
	)
	for i, a := range alerts {
		id[i], fp[i], rule[i], status[i], severity[i] = a.ID, a.Fingerprint, a.Rule, string(a.Status), string(a.Severity)
		kind[i], typ[i], metric[i], area[i], source[i] = a.Kind, a.Type, a.Metric, a.Area, a.Source
		value[i], threshold[i] = a.Value, a.Threshold
		starts[i], ends[i], updated[i] = a.StartsAt, a.EndsAt, a.UpdatedAt
		summary[i], seq[i] = a.Summary, uint32(a.Seq)
		category[i], subCategory[i], op[i], agg[i], window[i] = a.Category, a.SubCategory, a.Op, a.Agg, a.Window
		ackBy[i], ackAt[i], ackText[i] = a.AcknowledgedBy, a.AcknowledgedAt, a.AckComment
		assignee[i], assignedBy[i], assignedAt[i], comments[i] = a.Assignee, a.AssignedBy, a.AssignedAt, uint32(a.Comments)
		silencedBy[i] = a.SilencedBy
		if silencedBy[i] == nil {
			silencedBy[i] = []string{}
		}
		if a.Action != nil {
			action[i] = string(a.Action.Kind)
		}
		b, err := json.Marshal(a.Labels)
		if err != nil {
			return fmt.Errorf("store: alert %s labels: %w", a.MsgID(), err)
		}
		labels[i] = string(b)
	}
	return s.insertColumns(ctx, "alerts", alertsInsert, []any{
		id, fp, rule, status, severity, kind, typ, metric, area, source, value, threshold, starts, ends, updated, summary, seq,
		category, subCategory, labels, op, agg, window, ackBy, ackAt, ackText,
		assignee, assignedBy, assignedAt, comments, silencedBy, action,
	})
}

// AlertKeys returns the transitions stored in the alerts table, as
// "<id>:<seq>" (the Nats-Msg-Id): start-up writes the ones JetStream has
// and the table lacks, published by a process that died before its
// insert.
func (s *Store) AlertKeys(ctx context.Context) (map[string]bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT id, seq FROM alerts")
	if err != nil {
		return nil, fmt.Errorf("store: read alert keys: %w", err)
	}
	defer rows.Close()
	keys := map[string]bool{}
	for rows.Next() {
		var id string
		var seq uint32
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("store: read alert keys: %w", err)
		}
		keys[id+":"+strconv.FormatUint(uint64(seq), 10)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read alert keys: %w", err)
	}
	return keys, nil
}

// ReadPanes calls fn with every stored window row of size sizeSec that
// starts at or after fromSec, newest version only (FINAL), oldest first:
// start-up gives the alert rules their window history back. metrics, when
// not empty, limits the rows to those metrics.
func (s *Store) ReadPanes(ctx context.Context, sizeSec uint32, fromSec int64, metrics []string, fn func(r *window.Row)) (int, error) {
	filter := ""
	if len(metrics) > 0 {
		// Written literally: 18.16 rejects a bound array on the right of IN.
		filter = " AND metric IN (" + quoteList(metrics) + ")"
	}
	rows, err := s.conn.Query(ctx, "SELECT toUnixTimestamp(window_start), kind, type, metric, area, source, "+
		"count, sum, min, max, first, last, final FROM window_agg FINAL "+
		"WHERE window_size_s = ? AND window_start >= toDateTime(?, 'UTC')"+filter+" ORDER BY window_start",
		sizeSec, fromSec)
	if err != nil {
		return 0, fmt.Errorf("store: read window history: %w", err)
	}
	defer rows.Close()
	n := 0
	var r window.Row
	var start uint32
	var final uint8
	for rows.Next() {
		if err := rows.Scan(&start, &r.Kind, &r.Type, &r.Metric, &r.Area, &r.Source,
			&r.Count, &r.Sum, &r.Min, &r.Max, &r.First, &r.Last, &final); err != nil {
			return n, fmt.Errorf("store: read window history: %w", err)
		}
		r.StartMs, r.SizeMs, r.Final = int64(start)*1000, int64(sizeSec)*1000, final == 1
		fn(&r)
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("store: read window history: %w", err)
	}
	return n, nil
}

// LatestWindowStart is the newest window start stored, in Unix seconds
// (0 when the table is empty): history is read relative to the data's own
// clock, which for a replay of a past day is not the wall clock.
func (s *Store) LatestWindowStart(ctx context.Context) (int64, error) {
	var t uint32
	if err := s.conn.QueryRow(ctx, "SELECT toUnixTimestamp(max(window_start)) FROM window_agg").Scan(&t); err != nil {
		return 0, fmt.Errorf("store: newest window: %w", err)
	}
	return int64(t), nil
}
