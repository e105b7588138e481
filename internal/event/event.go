// Package event decodes and validates the event envelope of the contract
// (CONTRACT.md section 2). It is the first step of the data flow: bytes in,
// a validated Event or a Rejection with a reason code out.
package event

import "fmt"

// MaxSize is the largest accepted payload in bytes.
const MaxSize = 64 << 10

// Event is one accepted event. Metric and attribute pairs keep the order of
// the payload; names are unique.
type Event struct {
	ID     string
	Kind   string
	Type   string
	Source string
	Area   string
	// TimeMs is the event time in Unix milliseconds (UTC).
	TimeMs       int64
	HasLocation  bool
	Lat, Lon     float64
	MetricNames  []string
	MetricValues []float64
	AttrKeys     []string
	AttrValues   []string
}

// Reason is a rejection reason code of the contract.
type Reason string

// The rejection reasons; they appear in the Ioc-Reject-Reason header, the
// rejected table and the reason label of ioc_events_rejected_total.
const (
	MalformedJSON    Reason = "malformed_json"
	TooLarge         Reason = "too_large"
	InvalidUTF8      Reason = "invalid_utf8"
	MissingField     Reason = "missing_field"
	InvalidField     Reason = "invalid_field"
	UnknownKind      Reason = "unknown_kind"
	UnknownType      Reason = "unknown_type"
	SubjectMismatch  Reason = "subject_mismatch"
	MetricOutOfRange Reason = "metric_out_of_range"
	TimeInFuture     Reason = "time_in_future"
)

// Reasons lists every rejection reason, for metrics initialisation and tests.
var Reasons = []Reason{MalformedJSON, TooLarge, InvalidUTF8, MissingField, InvalidField,
	UnknownKind, UnknownType, SubjectMismatch, MetricOutOfRange, TimeInFuture}

// Rejection says why a message was not accepted. Kind is the event kind when
// it could be read and is known, otherwise "unknown" (it picks the DLQ subject).
type Rejection struct {
	Reason Reason
	Detail string
	Kind   string
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("%s: %s", r.Reason, r.Detail)
}
