package event

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict, single-pass JSON scanner for the envelope. It checks the whole
// document against the JSON grammar (RFC 8259) and records where the
// envelope's fields are, without building a tree: the semantic checks run
// afterwards on what it recorded, so a syntax error anywhere always wins
// over a semantic one.

// maxDepth bounds nesting; deeper documents are malformed for our purpose.
const maxDepth = 64

// valueKind is the JSON type of a recorded value.
type valueKind byte

const (
	kindNone valueKind = iota
	kindString
	kindNumber
	kindObject
	kindArray
	kindTrue
	kindFalse
	kindNull
)

func (k valueKind) String() string {
	return [...]string{"nothing", "string", "number", "object", "array", "true", "false", "null"}[k]
}

// value is a recorded JSON value: where it is in the scanned document
// (b[start:end]), for strings the bytes between the quotes (escaped when
// esc is set), for numbers their text. Offsets rather than a slice: the
// scanner copies a value for every member, and a value without pointers
// is a third of the size.
type value struct {
	start, end uint32
	kind       valueKind
	esc        bool
}

// member is one name/value pair of a recorded object.
type member struct {
	name  []byte // unescaped
	value value
}

// fieldSlot names the envelope fields the scanner records.
type fieldSlot int

const (
	slotID fieldSlot = iota
	slotKind
	slotType
	slotSource
	slotArea
	slotTime
	slotLocation
	slotMetrics
	slotAttrs
	numSlots
)

var slotNames = [numSlots]string{"id", "kind", "type", "source", "area", "time", "location", "metrics", "attrs"}

func slotOf(name []byte) fieldSlot {
	switch string(name) {
	case "id":
		return slotID
	case "kind":
		return slotKind
	case "type":
		return slotType
	case "source":
		return slotSource
	case "area":
		return slotArea
	case "time":
		return slotTime
	case "location":
		return slotLocation
	case "metrics":
		return slotMetrics
	case "attrs":
		return slotAttrs
	}
	return numSlots
}

// document is what one scan records. Members of metrics, attrs and location
// are kept (up to a limit; the count goes on) so they can be checked.
type document struct {
	fields    [numSlots]value
	present   [numSlots]bool
	duplicate string // first top-level field seen twice

	metrics, attrs, location []member
	nMetrics, nAttrs         int
}

// memberLimit keeps one more than the contract allows, enough to say "too many".
const memberLimit = 33

type scanner struct {
	b     []byte
	i     int
	names []byte // unescaped member names, reused between documents
	doc   document
}

type syntaxError struct {
	msg string
	at  int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.at) }

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), at: s.i}
}

// scan checks b and fills s.doc. b must be valid UTF-8.
func (s *scanner) scan(b []byte) error {
	s.b, s.i, s.names = b, 0, s.names[:0]
	metrics, attrs, location := s.doc.metrics[:0], s.doc.attrs[:0], s.doc.location[:0]
	s.doc = document{metrics: metrics, attrs: attrs, location: location}
	// Names are unescaped into s.names; reserve room so that earlier
	// slices into it stay valid (it never grows past the payload size).
	if cap(s.names) < len(b) {
		s.names = make([]byte, 0, len(b)+64)
	}
	s.ws()
	if s.i >= len(b) {
		return s.fail("empty payload")
	}
	isObject := b[s.i] == '{'
	var err error
	if isObject {
		err = s.object(0, s.topMember)
	} else {
		err = s.skipValue(0)
	}
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.fail("unexpected %q after the top-level value", b[s.i])
	}
	if !isObject {
		return errNotObject
	}
	return nil
}

var errNotObject = fmt.Errorf("payload must be a JSON object")

// topMember records one top-level member.
func (s *scanner) topMember(name []byte, depth int) error {
	slot := slotOf(name)
	if slot == numSlots {
		return s.skipValue(depth) // unknown top-level fields are ignored
	}
	if s.doc.present[slot] && s.doc.duplicate == "" {
		s.doc.duplicate = slotNames[slot]
	}
	s.doc.present[slot] = true
	start := s.i
	var err error
	switch {
	case slot == slotMetrics && s.b[s.i] == '{':
		err = s.object(depth, func(n []byte, d int) error {
			return s.recordMember(&s.doc.metrics, &s.doc.nMetrics, n, d)
		})
	case slot == slotAttrs && s.b[s.i] == '{':
		err = s.object(depth, func(n []byte, d int) error {
			return s.recordMember(&s.doc.attrs, &s.doc.nAttrs, n, d)
		})
	case slot == slotLocation && s.b[s.i] == '{':
		var n int
		err = s.object(depth, func(name []byte, d int) error {
			return s.recordMember(&s.doc.location, &n, name, d)
		})
	default:
		var v value
		v, err = s.value(depth)
		s.doc.fields[slot] = v
		return err
	}
	s.doc.fields[slot] = value{kind: kindObject, start: uint32(start), end: uint32(s.i)}
	return err
}

func (s *scanner) recordMember(list *[]member, n *int, name []byte, depth int) error {
	v, err := s.value(depth)
	if err != nil {
		return err
	}
	*n++
	if len(*list) < memberLimit {
		*list = append(*list, member{name: name, value: v})
	}
	return nil
}

// object scans {...} at s.i, calling each for every member with the
// scanner positioned at the member's value.
func (s *scanner) object(depth int, each func(name []byte, depth int) error) error {
	if depth >= maxDepth {
		return s.fail("nesting deeper than %d levels", maxDepth)
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail("expected a member name in double quotes")
		}
		start, end, esc, err := s.str()
		if err != nil {
			return err
		}
		raw := s.b[start:end]
		name := raw
		if esc {
			start := len(s.names)
			s.names = unescape(s.names, raw)
			name = s.names[start:len(s.names):len(s.names)]
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("expected ':' after a member name")
		}
		s.i++
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of payload")
		}
		if err := each(name, depth+1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of payload inside an object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or '}' in an object, found %q", s.b[s.i])
		}
	}
}

// value scans any value at s.i and records its kind and text.
func (s *scanner) value(depth int) (value, error) {
	if s.i >= len(s.b) {
		return value{}, s.fail("unexpected end of payload")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		start, end, esc, err := s.str()
		return value{kind: kindString, start: uint32(start), end: uint32(end), esc: esc}, err
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		err := s.number()
		return value{kind: kindNumber, start: uint32(start), end: uint32(s.i)}, err
	case c == '{':
		return value{kind: kindObject}, s.object(depth, func(_ []byte, d int) error { return s.skipValue(d) })
	case c == '[':
		return value{kind: kindArray}, s.array(depth)
	case c == 't':
		return value{kind: kindTrue}, s.literal("true")
	case c == 'f':
		return value{kind: kindFalse}, s.literal("false")
	case c == 'n':
		return value{kind: kindNull}, s.literal("null")
	default:
		return value{}, s.fail("unexpected %q where a value should be", c)
	}
}

func (s *scanner) skipValue(depth int) error {
	_, err := s.value(depth)
	return err
}

func (s *scanner) array(depth int) error {
	if depth >= maxDepth {
		return s.fail("nesting deeper than %d levels", maxDepth)
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := s.skipValue(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of payload inside an array")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or ']' in an array, found %q", s.b[s.i])
		}
	}
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("invalid literal (only true, false and null are JSON)")
	}
	s.i += len(word)
	return nil
}

// str scans a string at s.i and returns where the bytes between the quotes
// are. It works on locals: this loop runs for every byte of every payload.
func (s *scanner) str() (start, end int, esc bool, err error) {
	b := s.b
	i := s.i + 1 // past the opening quote
	start = i
	for i < len(b) {
		// Eight bytes at a time up to the first quote, backslash or
		// control character: most strings have none before their end.
		for i+8 <= len(b) {
			if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = i
				return 0, 0, false, s.fail("unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					s.i = i
					return 0, 0, false, s.fail("\\u must be followed by four hex digits")
				}
				i += 6
			default:
				s.i = i
				return 0, 0, false, s.fail("invalid escape \\%c", b[i+1])
			}
		default:
			s.i = i
			return 0, 0, false, s.fail("control character 0x%02x inside a string", c)
		}
	}
	s.i = i
	return 0, 0, false, s.fail("unterminated string")
}

// specialBytes has the high bit set in the lowest byte of w that is '"',
// '\\' or below 0x20, if any (bytes above that one may be flagged too,
// by borrows; only the lowest is exact).
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (w-ones*0x20)&^w) & highs
}

// number scans a number with the JSON grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.fail("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail("digits expected after the decimal point")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail("digits expected in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	b, i := s.b, s.i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	n := i - s.i
	s.i = i
	return n
}

func (s *scanner) ws() {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	s.i = i
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescape appends the decoded form of a scanned (valid) string to dst.
// Lone surrogates become U+FFFD, as encoding/json does.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hexVal(raw[i+2:])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}
