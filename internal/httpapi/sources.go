package httpapi

import (
	"net/http"
	"time"

	"github.com/iocstream/iocstream/internal/quality"
)

// Sources is what GET /api/v1/sources needs: the data-quality view of
// every source; *quality.Tracker implements it.
type Sources interface {
	Snapshot() []quality.Source
}

// HandleSources serves GET /api/v1/sources from src; pending reports the
// messages in IOC_EVENTS not yet delivered (the consumer's backlog).
func (s *Server) HandleSources(src Sources, pending func() float64) {
	s.mux.HandleFunc("GET /api/v1/sources", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, struct {
			At              time.Time        `json:"at"`
			ConsumerPending float64          `json:"consumerPending"`
			Sources         []quality.Source `json:"sources"`
		}{time.Now().UTC(), pending(), src.Snapshot()})
	})
}
