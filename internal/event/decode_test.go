package event

import (
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

const validWater = `{"id":"e-1","kind":"environment","type":"water_level","source":"wl-kim-long","area":"kim-long",` +
	`"time":"2026-11-22T17:00:05.120+07:00","location":{"lat":16.4586,"lon":107.556},"metrics":{"height":2.13},"attrs":{"river":"huong"}}`

const waterSubject = "ioc.events.environment.kim-long.wl-kim-long"

func nowMs() int64 { return time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC).UnixMilli() }

func TestDecodeValid(t *testing.T) {
	d := NewDecoder(5 * 60 * 1000)
	var ev Event
	if rej := d.Decode(waterSubject, []byte(validWater), nowMs(), &ev); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	want := time.Date(2026, 11, 22, 10, 0, 5, 120e6, time.UTC).UnixMilli()
	if ev.ID != "e-1" || ev.Kind != "environment" || ev.Type != "water_level" || ev.Source != "wl-kim-long" ||
		ev.Area != "kim-long" || ev.TimeMs != want || !ev.HasLocation || ev.Lat != 16.4586 {
		t.Fatalf("decoded %+v", ev)
	}
	if len(ev.MetricNames) != 1 || ev.MetricNames[0] != "height" || ev.MetricValues[0] != 2.13 {
		t.Fatalf("metrics %v %v", ev.MetricNames, ev.MetricValues)
	}
	if len(ev.AttrKeys) != 1 || ev.AttrKeys[0] != "river" || ev.AttrValues[0] != "huong" {
		t.Fatalf("attrs %v %v", ev.AttrKeys, ev.AttrValues)
	}
}

// TestDecodeDoesNotAliasInputs: a delivery's subject and payload are views
// into a buffer that the next delivery overwrites; nothing decoded may
// change with it.
func TestDecodeDoesNotAliasInputs(t *testing.T) {
	d := NewDecoder(5 * 60 * 1000)
	payload := strings.Replace(validWater, `"river":"huong"`, `"river":"huong","station":"kim long 2"`, 1)
	buf := []byte(waterSubject + payload)
	subject := unsafe.String(&buf[0], len(waterSubject))
	var ev Event
	if rej := d.Decode(subject, buf[len(waterSubject):], nowMs(), &ev); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	before := fmt.Sprintf("%+v", ev)
	for i := range buf {
		buf[i] = 'X'
	}
	if after := fmt.Sprintf("%+v", ev); after != before || ev.Source != "wl-kim-long" || ev.Area != "kim-long" {
		t.Fatalf("the decoded event changed with its input's buffer:\n%s\n%s", before, after)
	}
}

func TestDecodeRejects(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(validWater, old, new, 1) }
	tests := []struct {
		name    string
		subject string
		payload string
		reason  Reason
		kind    string
	}{
		{"too large", waterSubject, validWater[:len(validWater)-1] + `,"pad":"` + strings.Repeat("x", MaxSize) + `"}`, TooLarge, "environment"},
		{"invalid utf8", waterSubject, replace("huong", "hu\xffong"), InvalidUTF8, "environment"},
		{"truncated", waterSubject, validWater[:40], MalformedJSON, "environment"},
		{"NaN token", waterSubject, replace("2.13", "NaN"), MalformedJSON, "environment"},
		{"Infinity token", waterSubject, replace("2.13", "Infinity"), MalformedJSON, "environment"},
		{"array", waterSubject, `[1,2]`, MalformedJSON, "environment"},
		{"unknown kind on subject", "ioc.events.drone.x.y", `{`, MalformedJSON, "unknown"},
		{"missing id", waterSubject, replace(`"id":"e-1",`, ""), MissingField, "environment"},
		{"missing time", waterSubject, replace(`"time":"2026-11-22T17:00:05.120+07:00",`, ""), MissingField, "environment"},
		{"duplicate key", waterSubject, replace(`"id":"e-1",`, `"id":"e-1","id":"e-2",`), InvalidField, "environment"},
		{"id with space", waterSubject, replace(`"e-1"`, `"e 1"`), InvalidField, "environment"},
		{"id too long", waterSubject, replace(`"e-1"`, `"`+strings.Repeat("a", 65)+`"`), InvalidField, "environment"},
		{"id not string", waterSubject, replace(`"e-1"`, `17`), InvalidField, "environment"},
		{"source upper case", "ioc.events.environment.kim-long.WL", replace(`"source":"wl-kim-long"`, `"source":"WL"`), InvalidField, "environment"},
		{"time without offset", waterSubject, replace("+07:00", ""), InvalidField, "environment"},
		{"time not a date", waterSubject, replace("2026-11-22T17:00:05.120+07:00", "yesterday"), InvalidField, "environment"},
		{"february 30", waterSubject, replace("2026-11-22", "2026-02-30"), InvalidField, "environment"},
		{"lat 91", waterSubject, replace("16.4586", "91"), InvalidField, "environment"},
		{"metric string", waterSubject, replace("2.13", `"2.13"`), InvalidField, "environment"},
		{"metric huge", waterSubject, replace("2.13", `1e999`), InvalidField, "environment"},
		{"metric name digit", waterSubject, replace(`"height":2.13`, `"height":2.13,"1x":1`), InvalidField, "environment"},
		{"attr number", waterSubject, replace(`"huong"`, `7`), InvalidField, "environment"},
		{"attr too long", waterSubject, replace(`"huong"`, `"`+strings.Repeat("a", 257)+`"`), InvalidField, "environment"},
		{"unknown kind", "ioc.events.drone.kim-long.wl-kim-long", replace(`"environment"`, `"drone"`), UnknownKind, "unknown"},
		{"unknown type", waterSubject, replace(`"water_level"`, `"teleport"`), UnknownType, "environment"},
		{"missing required metric", waterSubject, replace(`"height":2.13`, `"depth":2.13`), MissingField, "environment"},
		{"subject area", "ioc.events.environment.vy-da.wl-kim-long", validWater, SubjectMismatch, "environment"},
		{"subject short", "ioc.events.environment", validWater, SubjectMismatch, "environment"},
		{"subject extra token", waterSubject + ".x", validWater, SubjectMismatch, "environment"},
		{"height out of range", waterSubject, replace("2.13", "51"), MetricOutOfRange, "environment"},
		{"future", waterSubject, replace("2026-11-22T17:00:05.120", "2026-11-22T17:10:05.120"), TimeInFuture, "environment"},
	}
	d := NewDecoder(5 * 60 * 1000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			rej := d.Decode(tt.subject, []byte(tt.payload), nowMs(), &ev)
			if rej == nil {
				t.Fatalf("accepted, want %s", tt.reason)
			}
			if rej.Reason != tt.reason || rej.Kind != tt.kind {
				t.Fatalf("got %s (kind %s): %s; want %s (kind %s)", rej.Reason, rej.Kind, rej.Detail, tt.reason, tt.kind)
			}
			if rej.Detail == "" {
				t.Fatal("empty detail")
			}
		})
	}
}

func TestParseRFC3339Ms(t *testing.T) {
	for _, s := range []string{
		"2026-11-22T17:00:05.120+07:00", "2026-11-22T17:00:05Z", "1999-12-31T23:59:59.999-05:30",
		"2024-02-29T00:00:00.5+00:00", "1970-01-01T00:00:00Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("reference parse %s: %v", s, err)
		}
		got, ok := parseRFC3339Ms([]byte(s))
		if !ok || got != want.UnixMilli() {
			t.Errorf("%s: got %d %v, want %d", s, got, ok, want.UnixMilli())
		}
	}
	for _, s := range []string{"2026-11-22 17:00:05Z", "2026-11-22T17:00:05", "2026-13-01T00:00:00Z", "2026-11-22T24:00:00Z",
		"2026-11-22T17:00:05.Z", "2026-11-22T17:00:05+0700", "2023-02-29T00:00:00Z", "2026-11-22T17:00:60Z"} {
		if _, ok := parseRFC3339Ms([]byte(s)); ok {
			t.Errorf("%s: accepted", s)
		}
	}
}

// TestCharacterRules holds the table-driven checks of ids, slugs and names
// to the contract's patterns, on random strings near their limits.
func TestCharacterRules(t *testing.T) {
	checks := []struct {
		name string
		re   *regexp.Regexp
		fn   func([]byte) bool
	}{
		{"id", regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`), validID},
		{"area", regexp.MustCompile(`^[a-z0-9-]{1,48}$`), func(b []byte) bool { return validSlug(b, maxAreaLen, 0) }},
		{"source", regexp.MustCompile(`^[a-z0-9_-]{1,64}$`), func(b []byte) bool { return validSlug(b, maxSourceLen, '_') }},
		{"name", regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`), validName},
	}
	rng := rand.New(rand.NewSource(3))
	alphabet := []byte("aZz09._:-_ /\x00\x7f\xc3\xa9A@[`{")
	for n := 0; n < 50_000; n++ {
		b := make([]byte, rng.Intn(70))
		for i := range b {
			if rng.Intn(8) == 0 {
				b[i] = byte(rng.Intn(256))
			} else {
				b[i] = alphabet[rng.Intn(len(alphabet))]
			}
		}
		for _, c := range checks {
			if got, want := c.fn(b), c.re.Match(b); got != want {
				t.Fatalf("%s %q: %v, the pattern says %v", c.name, b, got, want)
			}
		}
	}
}

// TestParseShortMatchesStrconv: the fast path gives strconv's float64, bit
// for bit, or declines.
func TestParseShortMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	cases := []string{"0", "-0", "0.0", "-0.0", "1", "-1", "2.13", "16.4586", "107.556", "9007199254740992",
		"9007199254740993", "0.1", "0.3", "123456789012345678", "1234567890123456789", "12345678901234567890",
		"0.0000000000000000000001", "0.00000000000000000000001", "1.7976931348623157", "4.9", "2e3", "1.5E-3"}
	for range 200_000 {
		var b []byte
		if rng.Intn(4) == 0 {
			b = append(b, '-')
		}
		intDigits := 1 + rng.Intn(12)
		if rng.Intn(5) == 0 {
			b = append(b, '0')
		} else {
			b = append(b, byte('1'+rng.Intn(9)))
			for range intDigits - 1 {
				b = append(b, byte('0'+rng.Intn(10)))
			}
		}
		if rng.Intn(3) > 0 {
			b = append(b, '.')
			for range 1 + rng.Intn(23) {
				b = append(b, byte('0'+rng.Intn(10)))
			}
		}
		cases = append(cases, string(b))
	}
	fast := 0
	for _, c := range cases {
		want, err := strconv.ParseFloat(c, 64)
		if err != nil {
			t.Fatalf("strconv %q: %v", c, err)
		}
		got, ok := parseShort([]byte(c))
		if !ok {
			continue
		}
		fast++
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseShort(%q) = %v (%#x), strconv %v (%#x)", c, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
	if fast < len(cases)/2 {
		t.Fatalf("the fast path took %d of %d numbers: it should take most", fast, len(cases))
	}
}
