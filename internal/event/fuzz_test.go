package event

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: no payload panics the decoder, and on valid UTF-8 within the
// depth limit the scanner's verdict on syntax matches encoding/json's.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validWater))
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(examplesDir, dir, "*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil && len(b) < 4096 {
				f.Add(b)
			}
		}
	}
	d := NewDecoder(5 * 60 * 1000)
	var sc scanner
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Event
		rej := d.Decode(waterSubject, data, nowMs(), &ev)
		if rej != nil && rej.Detail == "" {
			t.Fatalf("rejection without detail: %+v", rej)
		}
		if !utf8.Valid(data) || len(data) > MaxSize {
			return
		}
		err := sc.scan(data)
		if se, ok := err.(*syntaxError); ok && se.msg == "nesting deeper than 64 levels" {
			return
		}
		if got, want := err == nil || err == errNotObject, json.Valid(data); got != want {
			t.Fatalf("%q: scanner ok=%v (%v), encoding/json ok=%v", data, got, err, want)
		}
	})
}
