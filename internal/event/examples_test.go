package event

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The published examples must get the same verdict from the JSON Schema
// (what publishers read) and from the Decoder (what iocd enforces).

const examplesDir = "../../schemas/examples"

// clock is after every valid example's time and years before 2999.
var clock = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()

// schemaOnlyReasons cannot be expressed by a JSON Schema: they depend on
// the bytes, the subject or the clock.
var schemaOnlyReasons = map[Reason]bool{MalformedJSON: true, InvalidUTF8: true, TooLarge: true,
	SubjectMismatch: true, TimeInFuture: true}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile("../../schemas/events/event.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

func exampleSubject(t *testing.T, path string, data []byte) string {
	t.Helper()
	if b, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".subject"); err == nil {
		return strings.TrimSpace(string(b))
	}
	var env struct{ Kind, Area, Source string }
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: no .subject sidecar and unreadable payload: %v", path, err)
	}
	return fmt.Sprintf("ioc.events.%s.%s.%s", env.Kind, env.Area, env.Source)
}

func TestExamplesValid(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join(examplesDir, "valid", "*.json"))
	if len(files) < 15 {
		t.Fatalf("only %d valid examples", len(files))
	}
	d := NewDecoder(5 * 60 * 1000)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ev Event
			if rej := d.Decode(exampleSubject(t, f, data), data, clock, &ev); rej != nil {
				t.Errorf("decoder rejects: %v", rej)
			}
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := sch.Validate(doc); err != nil {
				t.Errorf("schema rejects: %v", err)
			}
		})
	}
}

func TestExamplesInvalid(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join(examplesDir, "invalid", "*.json"))
	seen := map[Reason]bool{}
	d := NewDecoder(5 * 60 * 1000)
	for _, f := range files {
		name := filepath.Base(f)
		reasonStr, _, ok := strings.Cut(name, "--")
		reason := Reason(reasonStr)
		if !ok {
			t.Fatalf("%s: name must be <reason>--<description>.json", name)
		}
		seen[reason] = true
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ev Event
			rej := d.Decode(exampleSubject(t, f, data), data, clock, &ev)
			if rej == nil || rej.Reason != reason {
				t.Errorf("decoder: got %v, want %s", rej, reason)
			}
			doc, parseErr := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
			schemaErr := parseErr
			if parseErr == nil {
				schemaErr = sch.Validate(doc)
			}
			switch {
			case reason == MalformedJSON:
				if parseErr == nil {
					t.Errorf("a JSON parser accepts malformed JSON")
				}
			case schemaOnlyReasons[reason]:
				// Beyond what a schema can say; the decoder verdict above is the test.
			case schemaErr == nil:
				t.Errorf("schema accepts an example the decoder rejects as %s", reason)
			}
		})
	}
	for _, r := range Reasons {
		if !seen[r] {
			t.Errorf("no invalid example for reason %s", r)
		}
	}
}
