package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/store"
)

// SeriesReader reads a metric's windows (ClickHouse).
type SeriesReader interface {
	Series(ctx context.Context, q store.SeriesQuery) ([]store.Point, error)
}

// RuleLookup finds a rule in force by name; its levels are the lines a
// chart draws.
type RuleLookup func(name string) (alert.Rule, bool)

// maxSeriesHours bounds a chart: a week of one-minute panes.
const maxSeriesHours = 168

type seriesLevel struct {
	Name      string  `json:"name"`
	Threshold float64 `json:"threshold"`
	Severity  string  `json:"severity"`
}

// HandleSeries serves GET /api/v1/series?fingerprint=<fp>&hours=6: the
// firing alert's metric over the last hours (around the moment it fired,
// for an alert replayed from the past), with its rule's levels.
func (s *Server) HandleSeries(r SeriesReader, rules RuleLookup) {
	s.mux.HandleFunc("GET /api/v1/series", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		fp := q.Get("fingerprint")
		if !validFingerprint(fp) {
			badRequest(w, "fingerprint: 1 to 64 letters and digits, the alert's")
			return
		}
		hours := 6
		if h := q.Get("hours"); h != "" {
			n, err := strconv.Atoi(h)
			if err != nil || n < 1 || n > maxSeriesHours {
				badRequest(w, "hours: a whole number from 1 to "+strconv.Itoa(maxSeriesHours))
				return
			}
			hours = n
		}
		var a *alert.Alert
		for _, f := range s.alerts.Firing() {
			if f.Fingerprint == fp {
				a = &f
				break
			}
		}
		if a == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no firing alert has fingerprint " + strconv.Quote(fp)})
			return
		}
		span := time.Duration(hours) * time.Hour
		to := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
		if a.StartsAt.Before(to.Add(-span)) {
			// A replay of a past day: show the hours around the firing.
			to = a.StartsAt.Add(span / 2).Truncate(time.Minute)
		}
		out := struct {
			Fingerprint string        `json:"fingerprint"`
			Metric      string        `json:"metric"`
			Agg         string        `json:"agg"`
			Op          string        `json:"op"`
			From        time.Time     `json:"from"`
			To          time.Time     `json:"to"`
			Points      []store.Point `json:"points"`
			Levels      []seriesLevel `json:"levels"`
			Clear       *float64      `json:"clear"`
		}{Fingerprint: fp, Metric: a.Metric, Agg: a.Agg, Op: a.Op, From: to.Add(-span), To: to, Levels: []seriesLevel{}}
		if rule, ok := rules(a.Rule); ok && rule.Kind == alert.KindThreshold {
			for _, lv := range rule.Threshold.Levels {
				out.Levels = append(out.Levels, seriesLevel{lv.Name, lv.Threshold, string(lv.Severity)})
			}
			out.Clear = rule.Threshold.Clear
		} else if a.Op != "" {
			out.Levels = append(out.Levels, seriesLevel{"", a.Threshold, string(a.Severity)})
		}
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		points, err := r.Series(ctx, store.SeriesQuery{Kind: a.Kind, Type: a.Type, Metric: a.Metric, Area: a.Area, Source: a.Source,
			Agg: a.Agg, From: out.From, To: out.To})
		if err != nil {
			s.log.Warn().Err(err).Str("fingerprint", fp).Msg("series unavailable")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the series is in ClickHouse, which does not answer now: " + err.Error()})
			return
		}
		out.Points = points
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
	})
}
