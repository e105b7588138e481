// Package httpapi serves iocd's HTTP endpoints: /metrics, /healthz,
// /readyz and the alert API (/api/v1/alerts and its SSE stream).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/city"
	"github.com/iocstream/iocstream/internal/console"
)

// Check is one readiness condition; it returns nil when satisfied.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Server is the HTTP server.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	ln  net.Listener
	log zerolog.Logger

	alerts Alerts
	// keepalive is how often an idle SSE stream gets a comment line, so
	// proxies and clients do not time it out. A field so tests can shorten it.
	keepalive time.Duration
	// done is closed when Shutdown starts: http.Server.Shutdown waits for
	// handlers but does not cancel their contexts, so streams watch this.
	done     chan struct{}
	doneOnce sync.Once
	actions  Actions
	history  History
	// silences, when set, marks the alerts served with those active now;
	// silenceChanges wakes the streams to send a fresh snapshot.
	silences       Silences
	silenceChanges *broadcast
}

// New listens on addr now, so a busy port fails start-up with a clear error.
// alerts may be nil: the alert endpoints are then not served.
func New(addr string, reg *prometheus.Registry, checks []Check, alerts Alerts, pprof bool, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: listen on IOC_HTTP_ADDR %s: %w", addr, err)
	}
	s := &Server{
		ln:        ln,
		log:       log,
		alerts:    alerts,
		keepalive: 15 * time.Second,
		done:      make(chan struct{}),

		silenceChanges: newBroadcast(),
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := map[string]string{}, http.StatusOK
		for _, c := range checks {
			if err := c.Run(ctx); err != nil {
				status[c.Name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[c.Name] = "ok"
			}
		}
		writeJSON(w, code, status)
	})
	if pprof {
		mux.HandleFunc("GET /debug/pprof/", httppprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", httppprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", httppprof.Symbol)
	}
	mux.Handle("GET /", console.Handler())
	mux.HandleFunc("GET /api/v1/whoami", s.whoami)
	mux.HandleFunc("GET /api/v1/areas", func(w http.ResponseWriter, r *http.Request) {
		type area struct {
			Slug string  `json:"slug"`
			Name string  `json:"name"`
			Lat  float64 `json:"lat"`
			Lon  float64 `json:"lon"`
		}
		var out []area
		for _, a := range city.Areas() {
			out = append(out, area{a.Slug, a.Name, a.Lat, a.Lon})
		}
		writeJSON(w, http.StatusOK, out)
	})
	if alerts != nil {
		mux.HandleFunc("GET /api/v1/alerts", s.listAlerts)
		mux.HandleFunc("GET /api/v1/alerts/stream", s.streamAlerts)
		if acts, ok := alerts.(Actions); ok {
			s.actions = acts
			for path, kind := range map[string]alert.ActionKind{"ack": alert.ActionAck, "unack": alert.ActionUnack,
				"assign": alert.ActionAssign, "comments": alert.ActionComment} {
				mux.HandleFunc("POST /api/v1/alerts/{fingerprint}/"+path, s.handleAction(kind))
			}
		}
	}
	// No WriteTimeout: it would cut the SSE streams, which bound each
	// write themselves.
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// HandleHistory serves GET /api/v1/alerts/{fingerprint}/history from h.
func (s *Server) HandleHistory(h History) {
	s.history = h
	s.mux.HandleFunc("GET /api/v1/alerts/{fingerprint}/history", s.alertHistory)
}

// HandleStatus serves GET /api/v1/status: what is degraded without
// making iocd unready, as st reports it.
func (s *Server) HandleStatus(st func() any) {
	s.mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, st())
	})
}

// Addr is the address actually listened on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs until Shutdown.
func (s *Server) Serve() {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error().Err(err).Msg("HTTP server stopped")
	}
}

// Shutdown stops accepting requests and waits for running ones; alert
// streams are told to end first, or it would wait for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("httpapi: shutdown: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
