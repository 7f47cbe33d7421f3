package operator

import (
	"testing"

	"github.com/go-logr/logr/funcr"
)

// An unchanged "pass" line is logged once; a changed one, an error and other lines always.
func TestQuietPassesDropsRepeatedPassLines(t *testing.T) {
	var lines []string
	base := funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{})
	log := quietPasses(base.WithName("clustering"))
	pass := func(state string) {
		log.WithValues("operation", "1-x").Info("pass", "state", state, "reason", "NoPods")
	}
	pass("Bootstrapping")
	pass("Bootstrapping")
	pass("Bootstrapping")
	pass("Failed")
	log.Info("step failed", "step", "x")
	log.Info("step failed", "step", "x")
	log.Error(nil, "plan stopped")
	if len(lines) != 5 {
		t.Fatalf("logged %d lines, want 5 (2 passes, 2 step lines, 1 error): %q", len(lines), lines)
	}
}
