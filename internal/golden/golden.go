// Package golden compares test output with files under testdata/, rewritten with -update.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Assert compares got with testdata/<name> and rewrites the file when -update is set.
func Assert(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failed to read golden file %s (run go test -update to create it): %v", path, err)
	}
	if string(want) != string(got) {
		t.Errorf("output differs from %s (run go test -update if the change is intended):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
