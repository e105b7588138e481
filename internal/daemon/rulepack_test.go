package daemon

import (
	"os"
	"testing"

	rulepack "github.com/iocstream/iocstream/deployments/rules"
	"github.com/iocstream/iocstream/internal/config"
)

// TestBuiltinRulePack: iocd's default rules are the Huế pack built into the
// binary, the same as the file, so iocd runs from any directory.
func TestBuiltinRulePack(t *testing.T) {
	if def := config.Default().Rules; def != rulepack.Builtin {
		t.Fatalf("default IOC_RULES is %q, want the built-in pack", def)
	}
	builtin, data, err := loadRules(rulepack.Builtin)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("../../deployments/rules/hue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := loadRules("../../deployments/rules/hue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(file) || len(builtin) != len(fromFile) || len(builtin) < 10 {
		t.Fatalf("built-in pack: %d rules, file: %d", len(builtin), len(fromFile))
	}
	if _, _, err := loadRules("no/such/rules.yaml"); err == nil {
		t.Fatal("a missing rules file must be an error")
	}
}
