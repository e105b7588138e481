package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
)

// Actions takes operators' actions on firing alerts; when the alerts given
// to New implement it, the action endpoints are served.
type Actions interface {
	Act(fingerprint string, a alert.Action)
}

// History reads an alert's transitions and actions (ClickHouse).
type History interface {
	History(ctx context.Context, fingerprint string) ([]alert.HistoryEntry, error)
}

// actionBody is every action's body; each endpoint takes its own fields
// only (see the allowed sets in handleAction).
type actionBody struct {
	By      string  `json:"by"`
	Comment string  `json:"comment"`
	Text    string  `json:"text"`
	To      *string `json:"to"`
}

// maxActionBody bounds a body: a 2000-character comment of 4-byte runes
// and its JSON escaping fit.
const maxActionBody = 16 << 10

// handleAction serves POST /api/v1/alerts/{fingerprint}/<kind> (CONTRACT.md
// section 8). The action is checked here, against the alert firing now,
// and applied by the alert's owner, which publishes it as a transition;
// 202 says it was handed over, the stream shows it.
func (s *Server) handleAction(kind alert.ActionKind) http.HandlerFunc {
	allowed := map[alert.ActionKind]string{
		alert.ActionAck:     `{"comment": "optional"}`,
		alert.ActionUnack:   `{"comment": "optional"}`,
		alert.ActionAssign:  `{"to": "pccc-hue", "comment": "optional"}`,
		alert.ActionComment: `{"text": "1 to 2000 characters"}`,
	}[kind]
	return func(w http.ResponseWriter, r *http.Request) {
		fp := r.PathValue("fingerprint")
		var body actionBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			badRequest(w, "the body must be JSON like "+allowed+": "+err.Error())
			return
		}
		if dec.More() {
			badRequest(w, "the body must be one JSON object like "+allowed)
			return
		}
		a := alert.Action{Kind: kind, Comment: body.Comment}
		switch {
		case kind == alert.ActionComment:
			if body.Comment != "" || body.To != nil {
				badRequest(w, `a comment takes only {"text": "..."}`)
				return
			}
			a.Comment = body.Text
		case body.Text != "":
			badRequest(w, `"text" is for comments; `+string(kind)+" takes "+allowed)
			return
		case kind == alert.ActionAssign:
			if body.To == nil {
				badRequest(w, `assign needs "to": the person or unit, or "" to unassign`)
				return
			}
			a.To = strings.TrimSpace(*body.To)
		case body.To != nil:
			badRequest(w, `"to" is for assign; `+string(kind)+" takes "+allowed)
			return
		}
		id, ok := actor(w, r, body.By, RoleOperator)
		if !ok {
			return
		}
		a.Actor, a.Role, a.At = id.Name, id.Role.String(), time.Now().UTC()
		if err := a.Validate(); err != nil {
			badRequest(w, err.Error())
			return
		}
		for _, f := range s.alerts.Firing() {
			if f.Fingerprint == fp {
				s.actions.Act(fp, a)
				s.log.Info().Str("fingerprint", fp).Str("alert", f.ID).Str("rule", f.Rule).Str("action", string(kind)).
					Str("by", id.Name).Stringer("role", id.Role).Str("to", a.To).Msg("alert action")
				writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "fingerprint": fp, "id": f.ID,
					"action": string(kind)})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no firing alert has fingerprint " + strconv.Quote(fp)})
	}
}

// alertHistory serves GET /api/v1/alerts/{fingerprint}/history.
func (s *Server) alertHistory(w http.ResponseWriter, r *http.Request) {
	fp := r.PathValue("fingerprint")
	if !validFingerprint(fp) {
		badRequest(w, "a fingerprint is 1 to 64 letters and digits")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	h, err := s.history.History(ctx, fp)
	if err != nil {
		s.log.Warn().Err(err).Str("fingerprint", fp).Msg("alert history unavailable")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the history is in ClickHouse, which does not answer now: " + err.Error()})
		return
	}
	if len(h) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no alert has fingerprint " + strconv.Quote(fp)})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h)
}

func validFingerprint(fp string) bool {
	if len(fp) == 0 || len(fp) > 64 {
		return false
	}
	for _, c := range fp {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}
