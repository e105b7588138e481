package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("rules:\n  - {name: silent, kind: absence, after: 30m, severity: warning}\n"), 0o644)
	os.WriteFile(bad, []byte("rules:\n  - name: silent\n    kind: absence\n    severity: loud\n"), 0o644)
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"check", good}, 0, "1 rules OK", ""},
		{[]string{"check", bad}, 1, "", "bad.yaml:4: severity \"loud\""},
		{[]string{"check", filepath.Join(dir, "missing.yaml")}, 1, "", "no such file"},
		{[]string{"lint", good}, 2, "", "usage"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := rulesCommand(tt.args, &out, &errOut); code != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, code, tt.code, errOut.String())
		}
		if !strings.Contains(out.String(), tt.out) || !strings.Contains(errOut.String(), tt.err) {
			t.Errorf("%v: stdout %q stderr %q", tt.args, out.String(), errOut.String())
		}
	}
}
