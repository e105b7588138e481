//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestAdversarialTextStoredVerbatim: text that looks like SQL or markup,
// with control characters, quotes and a line separator, is data: stored
// byte for byte in events, the tables intact, and the log still one JSON
// event per line.
func TestAdversarialTextStoredVerbatim(t *testing.T) {
	db, conn, d, js := startPipeline(t)
	path := filepath.Join(testenv.RepoRoot(t), "schemas", "examples", "valid", "feedback.adversarial-text.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		ID    string            `json:"id"`
		Attrs map[string]string `json:"attrs"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	publish(t, js, []message{{subject: "ioc.events.feedback.thuan-hoa.hue-s", data: data, msgID: ev.ID}})
	waitDrained(t, js)
	var keys, values []string
	waitFor(t, 30*time.Second, "the event stored", func() (bool, string) {
		err := conn.QueryRow(context.Background(), "SELECT attr_keys, attr_values FROM "+db+".events FINAL WHERE id = ?", ev.ID).
			Scan(&keys, &values)
		return err == nil, fmt.Sprint(err)
	})
	got := map[string]string{}
	for i := range keys {
		got[keys[i]] = values[i]
	}
	if got["summary"] != ev.Attrs["summary"] {
		t.Fatalf("stored %q, published %q", got["summary"], ev.Attrs["summary"])
	}
	var tables uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ? AND name = 'events'", db).Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("events table: %d, %v", tables, err)
	}
	if err, _ := d.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(d.logs)
	for i, line := range splitLines(logs) {
		if !json.Valid(line) {
			t.Fatalf("log line %d is not one JSON event: %q", i+1, line)
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[min(i+1, len(b)):]
	}
	return out
}
