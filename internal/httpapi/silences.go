package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/silence"
)

// Silences is what the silence endpoints need of the shared set;
// *silence.Store implements it.
type Silences interface {
	Create(ctx context.Context, s silence.Silence, by silence.Actor) (silence.Silence, error)
	Expire(ctx context.Context, id string, by silence.Actor) (silence.Silence, error)
	List() []silence.Silence
	SilencedBy(f silence.Fields) []string
	Changes() <-chan struct{}
}

// maxSilenceBody bounds a silence's JSON (matchers and a comment).
const maxSilenceBody = 64 << 10

// HandleSilences serves GET, POST /api/v1/silences and DELETE
// /api/v1/silences/{id}, and marks the alerts the API shows with the
// silences active now. ctx is the server's life: it ends the goroutine
// that tells the streams of changes.
func (s *Server) HandleSilences(ctx context.Context, sil Silences) {
	s.silences = sil
	go s.silenceChanges.follow(ctx, sil.Changes())
	s.mux.HandleFunc("GET /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, sil.List())
	})
	s.mux.HandleFunc("POST /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID       string            `json:"id"`
			Matchers []silence.Matcher `json:"matchers"`
			StartsAt time.Time         `json:"startsAt"`
			EndsAt   time.Time         `json:"endsAt"`
			Comment  string            `json:"comment"`
			By       string            `json:"createdBy"` // used only with the API open
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSilenceBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			badRequest(w, `the body must be a silence like {"matchers": [{"name": "source", "value": "aq-phu-bai-1", `+
				`"isRegex": false, "isEqual": true}], "startsAt": "…", "endsAt": "…", "comment": "bảo trì trạm"}: `+err.Error())
			return
		}
		if body.ID != "" {
			badRequest(w, "a silence cannot be updated: expire it and create a new one")
			return
		}
		id, ok := actor(w, r, body.By, RoleOperator)
		if !ok {
			return
		}
		created, err := sil.Create(r.Context(), silence.Silence{Matchers: body.Matchers, StartsAt: body.StartsAt,
			EndsAt: body.EndsAt, Comment: body.Comment}, silence.Actor{Name: id.Name, Role: id.Role.String()})
		switch {
		case errors.Is(err, silence.ErrInvalid):
			badRequest(w, err.Error())
			return
		case err != nil:
			s.log.Error().Err(err).Msg("silence not stored")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the silence was not stored: " + err.Error()})
			return
		}
		s.log.Info().Str("silence", created.ID).Str("by", id.Name).Stringer("role", id.Role).
			Time("ends_at", created.EndsAt).Msg("silence created")
		writeJSON(w, http.StatusCreated, map[string]string{"silenceID": created.ID})
	})
	s.mux.HandleFunc("DELETE /api/v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		sid := r.PathValue("id")
		id, ok := actor(w, r, r.URL.Query().Get("by"), RoleOperator)
		if !ok {
			return
		}
		_, err := sil.Expire(r.Context(), sid, silence.Actor{Name: id.Name, Role: id.Role.String()})
		switch {
		case errors.Is(err, silence.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no silence has id " + strconv.Quote(sid)})
			return
		case errors.Is(err, silence.ErrExpired):
			writeJSON(w, http.StatusConflict, map[string]string{"error": "silence " + strconv.Quote(sid) + " has already expired"})
			return
		case err != nil:
			s.log.Error().Err(err).Str("silence", sid).Msg("silence not expired")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the silence was not expired: " + err.Error()})
			return
		}
		s.log.Info().Str("silence", sid).Str("by", id.Name).Stringer("role", id.Role).Msg("silence expired")
		writeJSON(w, http.StatusOK, map[string]string{"status": "expired", "silenceID": sid})
	})
}

// marked is a copy of a with the silences active now: the board shows
// those, whatever was active when the transition was decided.
func (s *Server) marked(a alert.Alert) alert.Alert {
	if s.silences != nil {
		a.SilencedBy = s.silences.SilencedBy(&a)
	}
	return a
}

// broadcast tells every waiting stream that the silences changed: a
// closed channel wakes any number of readers, which a signal does not.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns a channel closed at the next change.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) follow(ctx context.Context, changes <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			b.mu.Lock()
			close(b.ch)
			b.ch = make(chan struct{})
			b.mu.Unlock()
		}
	}
}
