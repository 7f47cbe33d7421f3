package agent

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kura-db/kura/internal/contract"
)

func TestMigrateAsideMovesLegacyCopies(t *testing.T) {
	dir := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	legacy := filepath.Join(dir, contract.LegacyAsideDir)
	write(filepath.Join(legacy, "20250101T000000Z", "ibdata1"), "old")
	write(filepath.Join(legacy, "20250202T000000Z", "ibdata1"), "legacy")
	write(filepath.Join(legacy, "db.opt"), "server-written")
	write(filepath.Join(dir, AsideDir, "20250202T000000Z", "ibdata1"), "current")
	if err := migrateAside(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("the legacy aside directory is still there: %v", err)
	}
	for path, want := range map[string]string{"20250101T000000Z/ibdata1": "old", "20250202T000000Z/ibdata1": "current"} {
		got, err := os.ReadFile(filepath.Join(dir, AsideDir, path))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, AsideDir, "db.opt")); !os.IsNotExist(err) {
		t.Errorf("db.opt was moved: %v", err)
	}
	if err := migrateAside(dir, io.Discard); err != nil {
		t.Fatalf("a second run: %v", err)
	}
}
