// Package subject names the NATS subjects and streams of CONTRACT.md
// section 1: every ioc.* subject is built and parsed here and nowhere
// else, so a change of layout is a change of this file.
package subject

import (
	"strconv"
	"strings"
)

// The streams.
const (
	EventsStream = "IOC_EVENTS"
	AlertsStream = "IOC_ALERTS"
	DLQStream    = "IOC_DLQ"
	// SilencesBucket is the KV bucket of silences (§8), one key per silence id.
	SilencesBucket = "IOC_SILENCES"
)

// Wildcards of the streams' subjects, and the control subject on which
// acknowledgements reach the process that owns an alert.
const (
	AllEvents = "ioc.events.>"
	AllAlerts = "ioc.alerts.>"
	AllDLQ    = "ioc.dlq.>"
	// ActionRequests carries every operator action (the name is from when
	// only acknowledgements existed; NATS permissions already grant it).
	ActionRequests = "ioc.ctl.alerts.ack"
	// WellFormedEvents matches ioc.events.<kind>.<area>.<source>.
	WellFormedEvents = "ioc.events.*.*.*"
)

const (
	eventsPrefix    = "ioc.events."
	alertsPrefix    = "ioc.alerts."
	dlqPrefix       = "ioc.dlq."
	partitionPrefix = "ioc.part."
)

// Event is the subject of an event: ioc.events.<kind>.<area>.<source>.
func Event(kind, area, source string) string {
	return eventsPrefix + kind + "." + area + "." + source
}

// ParseEvent splits ioc.events.<kind>.<area>.<source>. ok is false for any
// other shape; kind is still set when the subject has the events prefix
// and a first token (a rejection names the kind it can).
func ParseEvent(s string) (kind, area, source string, ok bool) {
	if len(s) <= len(eventsPrefix) || s[:len(eventsPrefix)] != eventsPrefix {
		return "", "", "", false
	}
	rest := s[len(eventsPrefix):]
	var tok [3]string
	n, start := 0, 0
	for i := 0; i <= len(rest); i++ {
		if i == len(rest) || rest[i] == '.' {
			if n == 3 {
				return "", "", "", false
			}
			tok[n] = rest[start:i]
			n++
			start = i + 1
		}
	}
	if n != 3 {
		return tok[0], "", "", false
	}
	return tok[0], tok[1], tok[2], true
}

// Alert is the subject of an alert transition:
// ioc.alerts.<severity>.<kind>.<area>.
func Alert(severity, kind, area string) string {
	return alertsPrefix + severity + "." + kind + "." + area
}

// DeadLetter is the subject of a rejected message of a kind.
func DeadLetter(kind string) string { return dlqPrefix + kind }

// Partitioned is the stored-subject prefix of the layout with n partitions
// (ioc.part.<n>.); the literal n keeps layouts with different counts apart.
func Partitioned(n int) string { return partitionPrefix + strconv.Itoa(n) + "." }

// Published turns a stored subject back into the one the publisher used:
// ioc.part.<n>.<p>.<kind>.<area>.<source> → ioc.events.<kind>.<area>.<source>.
// Other subjects are returned as they are.
func Published(stored string) string {
	rest, ok := strings.CutPrefix(stored, partitionPrefix)
	if !ok {
		return stored
	}
	for range 2 { // <n>.<p>.
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return stored
		}
		rest = rest[i+1:]
	}
	return eventsPrefix + rest
}

// MalformedEvents select the subjects under ioc.events.> that do not have
// exactly three tokens after it.
var MalformedEvents = []string{"ioc.events.*", "ioc.events.*.*", "ioc.events.*.*.*.>"}
