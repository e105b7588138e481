package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/silence"
	"github.com/iocstream/iocstream/internal/store"
)

// silencer lets the alert engine ask the shared silence set which
// silences match a transition.
type silencer struct{ *silence.Store }

func (s silencer) SilencedBy(a *alert.Alert) []string {
	if s.Store == nil {
		return nil
	}
	return s.Store.SilencedBy(a)
}

// actionWriter is where silence audit rows go; *store.Store is one.
type actionWriter interface {
	InsertActions(ctx context.Context, rows []store.ActionRow) error
	SilenceActionKeys(ctx context.Context, since time.Time) (map[string]bool, error)
}

// openSilences opens the silence set shared through JetStream KV and
// writes each create and expire to alert_actions. At start-up the rows
// the bucket's silences should have and the table lacks are written: an
// action taken while ClickHouse was away, or just before a crash, is then
// not lost.
func openSilences(ctx context.Context, cfg config.Config, js jetstream.JetStream, st actionWriter,
	log zerolog.Logger) (*silence.Store, error) {
	audit := newAuditWriter(ctx, st, log)
	s, err := silence.Open(ctx, js, silence.Config{Replicas: cfg.StreamReplicas, OnChange: func(_ string, s silence.Silence, _ silence.Actor) {
		audit.add(silenceRows(s)...)
	}}, log)
	if err != nil {
		return nil, err
	}
	list := s.List()
	oldest := time.Now()
	for _, sil := range list {
		if t := createdAt(sil); t.Before(oldest) {
			oldest = t
		}
	}
	have, err := st.SilenceActionKeys(ctx, oldest.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	var missing []store.ActionRow
	for _, sil := range list {
		for _, r := range silenceRows(sil) {
			if !have[r.AlertID+":"+r.Action] {
				missing = append(missing, r)
			}
		}
	}
	audit.add(missing...)
	log.Info().Int("silences", len(list)).Int("audit_rows_missing", len(missing)).Msg("silences loaded")
	return s, nil
}

// silenceRows are a silence's audit rows: its creation and, once expired
// by someone, its expiry. A silence that ran to its end has no expire row.
func silenceRows(s silence.Silence) []store.ActionRow {
	s.Status = silence.Status{}   // a matter of time, not of the action
	details, _ := json.Marshal(s) // a silence always encodes
	rows := []store.ActionRow{{At: createdAt(s), AlertID: s.ID, Action: silence.ActionSilence, Actor: s.CreatedBy,
		Role: s.CreatedRole, Comment: s.Comment, Details: string(details)}}
	if s.ExpiredBy != "" {
		rows = append(rows, store.ActionRow{At: s.UpdatedAt, AlertID: s.ID, Action: silence.ActionUnsilence, Actor: s.ExpiredBy,
			Role: s.ExpiredRole, Details: string(details)})
	}
	return rows
}

// createdAt is when a silence was made; one stored before the field
// existed has its last update instead.
func createdAt(s silence.Silence) time.Time {
	if s.CreatedAt.IsZero() {
		return s.UpdatedAt
	}
	return s.CreatedAt
}

// auditWriter writes audit rows in the background, retrying until
// ClickHouse takes them, so that a silence is never refused because the
// audit table is away.
type auditWriter struct {
	rows chan store.ActionRow
}

// auditQueue bounds the rows held while ClickHouse is away; beyond it a
// row is dropped with an error log (the bucket still has the silence, and
// the next start-up writes its rows).
const auditQueue = 10_000

func newAuditWriter(ctx context.Context, st actionWriter, log zerolog.Logger) *auditWriter {
	w := &auditWriter{rows: make(chan store.ActionRow, auditQueue)}
	go w.run(ctx, st, log)
	return w
}

func (w *auditWriter) add(rows ...store.ActionRow) {
	for _, r := range rows {
		select {
		case w.rows <- r:
		default:
		}
	}
}

func (w *auditWriter) run(ctx context.Context, st actionWriter, log zerolog.Logger) {
	for {
		var batch []store.ActionRow
		select {
		case <-ctx.Done():
			return
		case r := <-w.rows:
			batch = append(batch, r)
		}
		for len(batch) < 1000 {
			select {
			case r := <-w.rows:
				batch = append(batch, r)
				continue
			default:
			}
			break
		}
		backoff := time.Second
		for attempt := 1; ; attempt++ {
			// Shutdown does not cut a write short: the rows are in hand.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := st.InsertActions(wctx, batch)
			cancel()
			if err == nil {
				break
			}
			log.Warn().Err(err).Int("rows", len(batch)).Int("attempt", attempt).Msg("silence audit rows not written; retrying")
			select {
			case <-ctx.Done():
				log.Warn().Int("rows", len(batch)).Msg("silence audit rows not written before shutdown; the next start writes them")
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}
