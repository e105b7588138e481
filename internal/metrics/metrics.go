// Package metrics defines iocd's Prometheus metrics (CONTRACT.md section 7)
// on a registry of its own, so tests and several pipelines never collide.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric iocd exports.
type Metrics struct {
	Registry *prometheus.Registry

	Received    *prometheus.CounterVec // kind
	Accepted    *prometheus.CounterVec // kind
	Rejected    *prometheus.CounterVec // kind, reason
	Late        *prometheus.CounterVec // kind, disposition
	Duplicate   *prometheus.CounterVec // kind
	EventLag    prometheus.Histogram
	Windows     *prometheus.CounterVec // final
	RowsWritten *prometheus.CounterVec // table
	WriteTime   *prometheus.HistogramVec
	WriteErrs   *prometheus.CounterVec // table
	DeadLetter  *prometheus.CounterVec // kind
	Pending     prometheus.Gauge
	Sources     prometheus.Gauge
	Open        prometheus.Gauge
	Restored    prometheus.Counter

	AlertTransitions *prometheus.CounterVec // rule, severity, status
	AlertsFiring     *prometheus.GaugeVec   // severity
	RulesLoaded      prometheus.Gauge
	RulesReloadOK    prometheus.Gauge
	RulesReloads     *prometheus.CounterVec // result

	PartitionsOwned prometheus.Gauge
	// PartitionShares is how many shares (partitions and the rejects
	// share) the replicas own between them when all is well: an alert
	// compares it with the sum of PartitionsOwned.
	PartitionShares prometheus.Gauge
	Takeovers       *prometheus.CounterVec // result
}

// New creates and registers the metrics.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_events_received_total",
			Help: "Messages fetched from IOC_EVENTS, by kind (unknown when unreadable)."}, []string{"kind"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_events_accepted_total",
			Help: "Events that passed validation, by kind."}, []string{"kind"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_events_rejected_total",
			Help: "Messages sent to the dead-letter stream, by kind and reason."}, []string{"kind", "reason"}),
		Late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_events_late_total",
			Help: "Events whose window was already final: corrected (inside the horizon) or dropped (beyond it)."}, []string{"kind", "disposition"}),
		Duplicate: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_events_duplicate_total",
			Help: "Events whose id was already counted inside the correction horizon."}, []string{"kind"}),
		EventLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ioc_event_lag_seconds",
			Help:    "Processing time minus event time of accepted events.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 86400}}),
		Windows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_windows_written_total",
			Help: "Window rows written to ClickHouse, by final (0 early, 1 final)."}, []string{"final"}),
		RowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_clickhouse_rows_written_total",
			Help: "Rows inserted into ClickHouse, by table."}, []string{"table"}),
		WriteTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ioc_clickhouse_write_seconds",
			Help:    "Duration of one successful ClickHouse insert, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"table"}),
		WriteErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_clickhouse_errors_total",
			Help: "Failed ClickHouse inserts (each is retried), by table."}, []string{"table"}),
		DeadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_dlq_published_total",
			Help: "Dead letters published on ioc.dlq.<kind>."}, []string{"kind"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_consumer_pending_messages",
			Help: "Messages in IOC_EVENTS not yet delivered to the consumer, as of the last fetched message."}),
		Sources: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_window_sources",
			Help: "Sources with window state in memory."}),
		Open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_windows_open",
			Help: "Windows not yet final."}),
		Restored: prometheus.NewCounter(prometheus.CounterOpts{Name: "ioc_events_restored_total",
			Help: "Events read back from ClickHouse at start-up to rebuild windows and the dedup set."}),
		AlertTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_alerts_transitions_total",
			Help: "Alert transitions published, by rule, severity and status."}, []string{"rule", "severity", "status"}),
		AlertsFiring: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ioc_alerts_firing",
			Help: "Alerts firing now, by severity."}, []string{"severity"}),
		RulesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_rules_loaded",
			Help: "Alert rules running."}),
		RulesReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_rules_last_reload_success",
			Help: "1 if the last load of the rules file succeeded, 0 if it failed and the previous rules still run."}),
		RulesReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_rules_reloads_total",
			Help: "Reloads of the rules file, by result (ok, error)."}, []string{"result"}),
		PartitionsOwned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_partitions_owned",
			Help: "Event partitions (and the rejects share) this process consumes now (IOC_PARTITIONS)."}),
		PartitionShares: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ioc_partition_shares",
			Help: "Shares of IOC_EVENTS the replicas own together (IOC_PARTITIONS plus the rejects share); 0 unpartitioned."}),
		Takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ioc_partition_takeovers_total",
			Help: "Partitions this process took over, by result (ok, error)."}, []string{"result"}),
	}
	m.Registry.MustRegister(m.Received, m.Accepted, m.Rejected, m.Late, m.Duplicate, m.EventLag, m.Windows,
		m.RowsWritten, m.WriteTime, m.WriteErrs, m.DeadLetter, m.Pending, m.Sources, m.Open, m.Restored,
		m.AlertTransitions, m.AlertsFiring, m.RulesLoaded, m.RulesReloadOK, m.RulesReloads,
		m.PartitionsOwned, m.PartitionShares, m.Takeovers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The tables' series exist from the start at 0, so that a rate or an
	// alert on errors sees the first one (a series born at 1 has no rise).
	for _, table := range WrittenTables {
		m.RowsWritten.WithLabelValues(table)
		m.WriteErrs.WithLabelValues(table)
	}
	return m
}

// WrittenTables are the tables the pipeline writes, the table label of
// the ClickHouse metrics.
var WrittenTables = []string{"events", "window_agg", "rejected", "alerts"}
