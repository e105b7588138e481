package event

import (
	"encoding/json"
	"math/bits"
	"math/rand"
	"strings"
	"testing"
)

// The scanner must accept exactly the documents encoding/json accepts (for
// valid UTF-8 and nesting within maxDepth).
func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":true,"d":false}`, `{"s":"\u00e9\n\"x\\"}`,
		`{"n":-0.5e-3}`, `{"n":0}`, `{"n":1E+2}`, ` { "a" : "b" } `, `{"a":"\ud83d\ude00"}`,
		`{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":+1}`, `{"n":NaN}`, `{"n":Infinity}`, `{"n":-}`,
		`{"a":1,}`, `{'a':1}`, `{"a" 1}`, `{"a":1}}`, `{"a":tru}`, `{"a":"x\qy"}`, `{"a":"\u12"}`,
		"{\"a\":\"tab\there\"}", `{"a":[1,2,]}`, `{"a":[}`, `[1]`, `"x"`, `{"a":1`, ``, `{"a":1} x`,
		`{"a":1e}`, `{"a":-01}`, `{"a":1.5e+}`, `{"a":nul}`, `{,}`, `{"a":{"b":{"c":[[[]]]}}}`,
	}
	var sc scanner
	for _, d := range docs {
		want := json.Valid([]byte(d))
		err := sc.scan([]byte(d))
		got := err == nil || err == errNotObject
		if got != want {
			t.Errorf("%q: scanner ok=%v (%v), encoding/json ok=%v", d, got, err, want)
		}
	}
}

// Random mutations of a real payload: the verdicts must agree.
func TestScannerMutations(t *testing.T) {
	base := []byte(validWater)
	alphabet := []byte(`{}[]":,.-+eE0123456789 \tnulltruefalse\u`)
	r := rand.New(rand.NewSource(7))
	var sc scanner
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), base...)
		for n := r.Intn(3) + 1; n > 0; n-- {
			pos := r.Intn(len(b))
			switch r.Intn(3) {
			case 0:
				b[pos] = alphabet[r.Intn(len(alphabet))]
			case 1:
				b = append(b[:pos], b[pos+1:]...)
			default:
				b = append(b[:pos], append([]byte{alphabet[r.Intn(len(alphabet))]}, b[pos:]...)...)
			}
		}
		want := json.Valid(b)
		err := sc.scan(b)
		if got := err == nil || err == errNotObject; got != want {
			t.Fatalf("%q: scanner ok=%v (%v), encoding/json ok=%v", b, got, err, want)
		}
	}
}

func TestScannerDepthLimit(t *testing.T) {
	var sc scanner
	deep := `{"x":` + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + `}`
	if err := sc.scan([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("deep nesting: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for _, s := range []string{`plain`, `a\"b\\c\/d\b\f\n\r\t`, `\u0048\u00e9\u4e2d`, `\ud83d\ude00`, `\ud83d alone`, `\ude00`} {
		var want string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got := string(unescape(nil, []byte(s))); got != want {
			t.Errorf("unescape(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestDecodeEscapedFields(t *testing.T) {
	// Escapes in names and values decode like plain text.
	payload := strings.Replace(validWater, `"id":"e-1"`, `"\u0069d":"e\u002d1"`, 1)
	payload = strings.Replace(payload, `"river":"huong"`, `"river":"H\u01b0\u01a1ng"`, 1)
	d := NewDecoder(5 * 60 * 1000)
	var ev Event
	if rej := d.Decode(waterSubject, []byte(payload), nowMs(), &ev); rej != nil {
		t.Fatal(rej)
	}
	if ev.ID != "e-1" || ev.AttrValues[0] != "Hương" {
		t.Fatalf("id %q attr %q", ev.ID, ev.AttrValues[0])
	}
}

// TestSpecialBytes checks the eight-bytes-at-a-time search of str against
// a byte loop: the lowest flagged byte must be the first quote, backslash
// or control character, and nothing is flagged when there is none.
func TestSpecialBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	alphabet := []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x21, 'a', '~', 0x7f, 0x80, 0xc3, 0xff, '\n', 0x5b, 0x5d}
	for n := 0; n < 200_000; n++ {
		var b [8]byte
		for i := range b {
			if rng.Intn(3) == 0 {
				b[i] = alphabet[rng.Intn(len(alphabet))]
			} else {
				b[i] = byte(rng.Intn(256))
			}
		}
		want := -1
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				want = i
				break
			}
		}
		m := specialBytes(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		got := -1
		if m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != want {
			t.Fatalf("% x: first special byte at %d, want %d", b, got, want)
		}
	}
}
