package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
)

// Alerts is what the alert endpoints need of the live alert board.
type Alerts interface {
	Firing() []alert.Alert
	Subscribe(buf int) ([]alert.Alert, <-chan alert.Alert, func())
}

const (
	// streamBuffer is how many transitions an SSE client may lag behind
	// before the board drops it; a burst of a few hundred alerts is already
	// far beyond what a city produces in a second.
	streamBuffer = 256
	// streamWriteTimeout bounds each write to a stream, so a client that
	// stopped reading cannot hold its handler (and Shutdown) forever.
	streamWriteTimeout = 10 * time.Second
)

// listAlerts serves GET /api/v1/alerts: the firing alerts, most severe first.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	firing := s.alerts.Firing()
	if firing == nil {
		firing = []alert.Alert{} // [] rather than null
	}
	for i := range firing {
		firing[i] = s.marked(firing[i])
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, firing)
}

// streamAlerts serves GET /api/v1/alerts/stream as Server-Sent Events: a
// snapshot of the firing alerts, then every transition after it. A client
// reconnecting gets a fresh snapshot, which is why Last-Event-ID is not
// needed to catch up.
func (s *Server) streamAlerts(w http.ResponseWriter, r *http.Request) {
	silencesChanged := s.silenceChanges.wait()
	snapshot, updates, cancel := s.alerts.Subscribe(streamBuffer)
	defer cancel()
	data, err := s.snapshotJSON(snapshot)
	if err != nil {
		s.log.Error().Err(err).Msg("encoding the alert snapshot")
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "cannot encode alerts"})
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := writeEvent(w, rc, "event: snapshot\ndata: %s\n\n", data); err != nil {
		return
	}

	keepalive := time.NewTicker(s.keepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			writeError(w, rc, "server shutting down")
			return
		case <-keepalive.C:
			if err := writeEvent(w, rc, ": keepalive\n\n"); err != nil {
				return
			}
		case <-silencesChanged:
			// A silence started, ended or was created or expired: the
			// alerts it marks change without a transition, so the client
			// gets the whole board again.
			silencesChanged = s.silenceChanges.wait()
			data, err := s.snapshotJSON(s.alerts.Firing())
			if err != nil {
				s.log.Error().Err(err).Msg("encoding the alert snapshot")
				continue
			}
			if err := writeEvent(w, rc, "event: snapshot\ndata: %s\n\n", data); err != nil {
				return
			}
		case a, ok := <-updates:
			if !ok {
				writeError(w, rc, "alert stream closed (client too slow or server shutting down), reconnect")
				return
			}
			a = s.marked(a)
			data, err := a.JSON()
			if err != nil {
				// Only a non-finite value fails; skipping it keeps the
				// stream going, and the next snapshot is right again.
				s.log.Error().Err(err).Str("alert", a.MsgID()).Msg("encoding an alert transition")
				continue
			}
			if err := writeEvent(w, rc, "event: alert\nid: %s\ndata: %s\n\n", a.MsgID(), data); err != nil {
				return
			}
		}
	}
}

// snapshotJSON encodes the firing alerts, marked with the silences active
// now, as a snapshot event's data.
func (s *Server) snapshotJSON(firing []alert.Alert) ([]byte, error) {
	if firing == nil {
		firing = []alert.Alert{}
	}
	for i := range firing {
		firing[i] = s.marked(firing[i])
	}
	return json.Marshal(firing)
}

// writeError tells the client why the stream ends, if it is still there.
func writeError(w http.ResponseWriter, rc *http.ResponseController, msg string) {
	data, _ := json.Marshal(map[string]string{"error": msg}) // a string map always encodes
	_ = writeEvent(w, rc, "event: error\ndata: %s\n\n", data)
}

// writeEvent writes one event and flushes it at once: SSE is useless
// buffered.
func writeEvent(w http.ResponseWriter, rc *http.ResponseController, format string, args ...any) error {
	// Not every ResponseWriter supports deadlines (httptest's recorder does
	// not); the stream still works without one.
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := fmt.Fprintf(w, format, args...); err != nil {
		return fmt.Errorf("httpapi: write event: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("httpapi: flush event: %w", err)
	}
	return nil
}
