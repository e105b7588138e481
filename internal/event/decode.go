package event

import (
	"fmt"
	"github.com/iocstream/iocstream/internal/subject"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Limits of the envelope (CONTRACT.md section 2).
const (
	maxMetrics    = 32
	maxAttrs      = 32
	maxAttrValue  = 256
	maxIDLen      = 64
	maxSourceLen  = 64
	maxAreaLen    = 48
	maxNameLen    = 48
	internMaxSize = 1 << 16
)

// Decoder turns message bytes into validated events. It reuses its
// scanner between calls, so one Decoder serves one goroutine.
type Decoder struct {
	scan        scanner
	maxFutureMs int64
	intern      map[string]string
	strBuf      []byte // unescaped string values
	// Small direct-mapped caches in front of the intern table and the
	// metric catalog: the same few names and values repeat event after
	// event, and a compare is cheaper than a map's hash.
	recentStr    [recentSize]string
	recentMetric [recentSize]*knownMetric
	recentType   [recentSize]*typeRule
}

const recentSize = 64 // a power of two

// recentSlot picks a cache slot from the length and two bytes of b.
func recentSlot(b []byte) int {
	return int(uint(len(b))*31+uint(b[0])*7+uint(b[len(b)-1])) & (recentSize - 1)
}

// NewDecoder returns a Decoder that rejects events more than maxFutureMs
// milliseconds ahead of the clock passed to Decode.
func NewDecoder(maxFutureMs int64) *Decoder {
	return &Decoder{maxFutureMs: maxFutureMs, intern: make(map[string]string, 1024)}
}

// Decode validates data, published on subject, against the envelope rules
// and fills ev. nowMs is the processor's clock in Unix milliseconds. The
// returned Rejection is nil when the event is accepted. ev's slices are
// reused from length zero, and its strings alias neither data nor subject:
// both may be views into a buffer reused after the call.
func (d *Decoder) Decode(subject string, data []byte, nowMs int64, ev *Event) *Rejection {
	subj := splitSubject(subject)
	fallbackKind := "unknown"
	if k, ok := kindName(subj.kind); ok {
		fallbackKind = k
	}
	if len(data) > MaxSize {
		return reject(TooLarge, fallbackKind, "payload is %d bytes; the limit is %d", len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		return reject(InvalidUTF8, fallbackKind, "payload is not valid UTF-8")
	}
	if err := d.scan.scan(data); err != nil {
		return reject(MalformedJSON, fallbackKind, "%v", err)
	}
	doc := &d.scan.doc
	d.strBuf = d.strBuf[:0]
	if doc.duplicate != "" {
		return reject(InvalidField, fallbackKind, "field %q appears more than once", doc.duplicate)
	}
	for slot := slotID; slot <= slotTime; slot++ {
		if !doc.present[slot] {
			return reject(MissingField, fallbackKind, "required field %q is missing", slotNames[slot])
		}
	}
	env := &doc.fields

	// Kind and type first: they pick the dead-letter subject and the rules.
	kind, rej := d.stringField(env[slotKind], "kind", fallbackKind)
	if rej != nil {
		return rej
	}
	spec, ok := kinds[string(kind)]
	if !ok {
		return reject(UnknownKind, "unknown", "kind %q is not one of camera, traffic, environment, feedback", truncate(kind))
	}
	ev.Kind = spec.name
	typ, rej := d.stringField(env[slotType], "type", ev.Kind)
	if rej != nil {
		return rej
	}
	rule := d.typeRule(spec, typ)
	if rule == nil {
		return reject(UnknownType, ev.Kind, "type %q is not a known %s type", truncate(typ), ev.Kind)
	}
	ev.Type = rule.name

	id, rej := d.stringField(env[slotID], "id", ev.Kind)
	if rej != nil {
		return rej
	}
	if !validID(id) {
		return reject(InvalidField, ev.Kind, "id %q must be 1-%d characters of [A-Za-z0-9._:-]", truncate(id), maxIDLen)
	}
	source, rej := d.stringField(env[slotSource], "source", ev.Kind)
	if rej != nil {
		return rej
	}
	if !validSlug(source, maxSourceLen, '_') {
		return reject(InvalidField, ev.Kind, "source %q must be 1-%d characters of [a-z0-9_-]", truncate(source), maxSourceLen)
	}
	area, rej := d.stringField(env[slotArea], "area", ev.Kind)
	if rej != nil {
		return rej
	}
	if !validSlug(area, maxAreaLen, 0) {
		return reject(InvalidField, ev.Kind, "area %q must be 1-%d characters of [a-z0-9-]", truncate(area), maxAreaLen)
	}
	if !subj.ok || subj.kind != ev.Kind || subj.area != string(area) || subj.source != string(source) {
		return reject(SubjectMismatch, ev.Kind, "subject %q does not match ioc.events.%s.%s.%s", truncate([]byte(subject)), ev.Kind, area, source)
	}
	timeBytes, rej := d.stringField(env[slotTime], "time", ev.Kind)
	if rej != nil {
		return rej
	}
	timeMs, ok := parseRFC3339Ms(timeBytes)
	if !ok {
		return reject(InvalidField, ev.Kind, "time %q is not RFC 3339 with an offset (2026-11-22T17:00:05.120+07:00)", truncate(timeBytes))
	}

	ev.HasLocation, ev.Lat, ev.Lon = false, 0, 0
	if doc.present[slotLocation] {
		if rej := d.decodeLocation(env[slotLocation], doc.location, ev); rej != nil {
			return rej
		}
	}
	if rej := d.decodeMetrics(doc, rule, ev); rej != nil {
		return rej
	}
	if rej := d.decodeAttrs(doc, ev); rej != nil {
		return rej
	}
	if timeMs > nowMs+d.maxFutureMs {
		return reject(TimeInFuture, ev.Kind, "time %s is %.0f s ahead of the processor's clock; the limit is %.0f s",
			timeBytes, float64(timeMs-nowMs)/1000, float64(d.maxFutureMs)/1000)
	}
	ev.ID = string(id)
	// Interned, not the subject's tokens: a delivery's subject is a view
	// into a buffer that the next delivery reuses.
	ev.Source = d.str(source)
	ev.Area = d.str(area)
	ev.TimeMs = timeMs
	return nil
}

func (d *Decoder) decodeLocation(v value, members []member, ev *Event) *Rejection {
	if v.kind != kindObject {
		return reject(InvalidField, ev.Kind, "location must be an object with lat and lon")
	}
	var lat, lon value
	for _, m := range members {
		switch string(m.name) {
		case "lat":
			lat = m.value
		case "lon":
			lon = m.value
		}
	}
	if lat.kind != kindNumber || lon.kind != kindNumber {
		return reject(InvalidField, ev.Kind, "location needs numeric lat and lon")
	}
	la, _ := parseNumber(d.raw(lat))
	lo, _ := parseNumber(d.raw(lon))
	if !(la >= -90 && la <= 90) || !(lo >= -180 && lo <= 180) {
		return reject(InvalidField, ev.Kind, "location %g,%g is outside lat [-90, 90], lon [-180, 180]", la, lo)
	}
	ev.HasLocation, ev.Lat, ev.Lon = true, la, lo
	return nil
}

func (d *Decoder) decodeMetrics(doc *document, rule *typeRule, ev *Event) *Rejection {
	ev.MetricNames, ev.MetricValues = ev.MetricNames[:0], ev.MetricValues[:0]
	rej := visitEntries(doc.present[slotMetrics], doc.fields[slotMetrics], doc.metrics, doc.nMetrics,
		"metrics", "name to number", maxMetrics, ev.Kind, func(key []byte, val value) *Rejection {
			return d.addMetric(key, val, ev)
		})
	if rej != nil {
		return rej
	}
	for _, name := range rule.allOf {
		if !hasName(ev.MetricNames, name) {
			return reject(MissingField, ev.Kind, "%s/%s requires metric %q", ev.Kind, ev.Type, name)
		}
	}
	if len(rule.anyOf) > 0 {
		found := false
		for _, name := range rule.anyOf {
			if hasName(ev.MetricNames, name) {
				found = true
				break
			}
		}
		if !found {
			return reject(MissingField, ev.Kind, "%s/%s requires at least one of the metrics %v", ev.Kind, ev.Type, rule.anyOf)
		}
	}
	return nil
}

func (d *Decoder) addMetric(key []byte, val value, ev *Event) *Rejection {
	if !validName(key) {
		return reject(InvalidField, ev.Kind, "metric name %q must match ^[A-Za-z][A-Za-z0-9_]{0,47}$", truncate(key))
	}
	if hasName(ev.MetricNames, string(key)) {
		return reject(InvalidField, ev.Kind, "metric %q appears more than once", key)
	}
	if val.kind != kindNumber {
		return reject(InvalidField, ev.Kind, "metric %q must be a number, not %s", key, val.kind)
	}
	f, err := parseNumber(d.raw(val))
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return reject(InvalidField, ev.Kind, "metric %q is not a finite number", key)
	}
	name := ""
	if r := d.knownMetric(key); r != nil {
		name = r.name
		if f < r.min || f > r.max {
			return reject(MetricOutOfRange, ev.Kind, "metric %q = %g is outside its range [%g, %g]", key, f, r.min, r.max)
		}
		if r.integer && f != math.Trunc(f) {
			return reject(MetricOutOfRange, ev.Kind, "metric %q = %g must be a whole number", key, f)
		}
	}
	if name == "" {
		name = d.str(key)
	}
	ev.MetricNames = append(ev.MetricNames, name)
	ev.MetricValues = append(ev.MetricValues, f)
	return nil
}

func (d *Decoder) decodeAttrs(doc *document, ev *Event) *Rejection {
	ev.AttrKeys, ev.AttrValues = ev.AttrKeys[:0], ev.AttrValues[:0]
	rej := visitEntries(doc.present[slotAttrs], doc.fields[slotAttrs], doc.attrs, doc.nAttrs,
		"attrs", "name to string", maxAttrs, ev.Kind, func(key []byte, val value) *Rejection {
			switch {
			case !validName(key):
				return reject(InvalidField, ev.Kind, "attr name %q must match ^[A-Za-z][A-Za-z0-9_]{0,47}$", truncate(key))
			case hasName(ev.AttrKeys, string(key)):
				return reject(InvalidField, ev.Kind, "attr %q appears more than once", key)
			case val.kind != kindString:
				return reject(InvalidField, ev.Kind, "attr %q must be a string, not %s", key, val.kind)
			}
			s := d.text(val)
			if len(s) > maxAttrValue {
				return reject(InvalidField, ev.Kind, "attr %q is %d bytes; at most %d are allowed", key, len(s), maxAttrValue)
			}
			ev.AttrKeys = append(ev.AttrKeys, d.str(key))
			ev.AttrValues = append(ev.AttrValues, d.str(s))
			return nil
		})
	if rej != nil {
		return rej
	}
	if ev.Kind == "feedback" {
		return checkFeedback(ev)
	}
	return nil
}

// visitEntries checks that a recorded object field, if present, has at
// most max members and calls fn on each until one is rejected.
func visitEntries(present bool, v value, members []member, count int, field, shape string, max int, kind string,
	fn func(key []byte, val value) *Rejection) *Rejection {
	if !present {
		return nil
	}
	if v.kind != kindObject {
		return reject(InvalidField, kind, "%s must be an object of %s, not %s", field, shape, v.kind)
	}
	if count > max {
		return reject(InvalidField, kind, "%d %s; at most %d are allowed", count, field, max)
	}
	for _, m := range members {
		if rej := fn(m.name, m.value); rej != nil {
			return rej
		}
	}
	return nil
}

// checkFeedback applies the attribute rules of Hue-S reports.
func checkFeedback(ev *Event) *Rejection {
	reportID, hasReport := attr(ev, "report_id")
	if !hasReport {
		return reject(MissingField, ev.Kind, "feedback requires attrs.report_id")
	}
	if reportID == "" {
		return reject(InvalidField, ev.Kind, "attrs.report_id is empty")
	}
	status, hasStatus := attr(ev, "status")
	if !hasStatus {
		return reject(MissingField, ev.Kind, "feedback requires attrs.status")
	}
	if !feedbackStatuses[status] {
		return reject(InvalidField, ev.Kind, "attrs.status %q is not one of received, assigned, processing, resolved, rejected", status)
	}
	if channel, ok := attr(ev, "channel"); ok && !feedbackChannels[channel] {
		return reject(InvalidField, ev.Kind, "attrs.channel %q is not one of app, hotline, web, zalo", channel)
	}
	return nil
}

func attr(ev *Event, key string) (string, bool) {
	for i, k := range ev.AttrKeys {
		if k == key {
			return ev.AttrValues[i], true
		}
	}
	return "", false
}

// str returns b as a string, shared with earlier equal strings: kinds, types,
// areas, sources and names repeat on every event, ids never do. The table
// stops growing at internMaxSize so hostile input cannot grow it forever.
func (d *Decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := recentSlot(b)
	if s := d.recentStr[h]; s == string(b) {
		return s
	}
	s, ok := d.intern[string(b)]
	if !ok {
		s = string(b)
		if len(d.intern) < internMaxSize {
			d.intern[s] = s
		}
	}
	d.recentStr[h] = s
	return s
}

// typeRule returns the rule of a type of spec's kind, nil for an unknown
// type.
func (d *Decoder) typeRule(spec kindSpec, typ []byte) *typeRule {
	if len(typ) == 0 {
		return nil
	}
	h := recentSlot(typ)
	if r := d.recentType[h]; r != nil && r.kind == spec.name && r.name == string(typ) {
		return r
	}
	r := spec.types[string(typ)]
	if r != nil {
		d.recentType[h] = r
	}
	return r
}

// knownMetric returns the catalog's entry for a metric name, nil for a
// name the catalog does not know. name is not empty.
func (d *Decoder) knownMetric(name []byte) *knownMetric {
	h := recentSlot(name)
	if r := d.recentMetric[h]; r != nil && r.name == string(name) {
		return r
	}
	r, ok := knownMetrics[string(name)]
	if !ok {
		return nil
	}
	d.recentMetric[h] = r
	return r
}

func (d *Decoder) stringField(v value, name, kind string) ([]byte, *Rejection) {
	if v.kind != kindString {
		return nil, reject(InvalidField, kind, "%s must be a string, not %s", name, v.kind)
	}
	return d.text(v), nil
}

// text returns a scanned string's content, unescaped when needed. The
// result is valid until the next Decode.
func (d *Decoder) text(v value) []byte {
	if !v.esc {
		return d.raw(v)
	}
	start := len(d.strBuf)
	d.strBuf = unescape(d.strBuf, d.raw(v))
	return d.strBuf[start:len(d.strBuf):len(d.strBuf)]
}

// raw is where v is in the payload last scanned.
func (d *Decoder) raw(v value) []byte { return d.scan.b[v.start:v.end] }

// parseNumber converts a number the scanner has already checked; the only
// possible error is a value beyond float64 (±Inf).
func parseNumber(raw []byte) (float64, error) {
	if f, ok := parseShort(raw); ok {
		return f, nil
	}
	// The string does not outlive the call except inside an error we drop.
	return strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
}

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseShort converts the numbers sensors send (-12.5, 16.4586, 2048)
// without strconv's general machinery, bit for bit as strconv would: when
// the digits make an integer of at most 2^53 and at most 22 of them follow
// the point, both operands of one division are exact, and IEEE division
// rounds correctly (Clinger's fast path, also strconv's first case). It
// declines anything else, exponents included.
func parseShort(b []byte) (float64, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, frac := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
			frac++
		}
	}
	if i != len(b) || digits == 0 || digits > 19 || mant > 1<<53 || frac >= len(exactPow10) {
		return 0, false
	}
	f := float64(mant) / exactPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

func reject(reason Reason, kind, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// truncate keeps details short when the offending value is huge.
func truncate(b []byte) string {
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

func hasName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func validID(b []byte) bool {
	if len(b) == 0 || len(b) > maxIDLen {
		return false
	}
	for _, c := range b {
		if charClass[c]&idChar == 0 {
			return false
		}
	}
	return true
}

// Character classes of ids, slugs and names, one table lookup per byte.
const (
	idChar   = 1 << iota // [A-Za-z0-9._:-]
	slugChar             // [a-z0-9-]
	nameChar             // [A-Za-z0-9_]
)

var charClass = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		lower, upper, digit := c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9'
		if lower || upper || digit || c == '.' || c == '_' || c == ':' || c == '-' {
			t[c] |= idChar
		}
		if lower || digit || c == '-' {
			t[c] |= slugChar
		}
		if lower || upper || digit || c == '_' {
			t[c] |= nameChar
		}
	}
	return t
}()

// validSlug accepts 1..max characters of [a-z0-9-] plus the extra byte, if any.
func validSlug(b []byte, max int, extra byte) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for _, c := range b {
		if charClass[c]&slugChar == 0 && (extra == 0 || c != extra) {
			return false
		}
	}
	return true
}

func validName(b []byte) bool {
	if len(b) == 0 || len(b) > maxNameLen {
		return false
	}
	if c := b[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	for _, c := range b[1:] {
		if charClass[c]&nameChar == 0 {
			return false
		}
	}
	return true
}

// subjectTokens are the last three tokens of ioc.events.<kind>.<area>.<source>.
type subjectTokens struct {
	kind, area, source string
	ok                 bool
}

func splitSubject(s string) subjectTokens {
	kind, area, source, ok := subject.ParseEvent(s)
	return subjectTokens{kind: kind, area: area, source: source, ok: ok}
}
