package charttest

import (
	"os"
	"testing"
)

// TestMain stops the API server the tests share (apiServer) once they have all run.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedE != nil {
		_ = sharedE.Stop()
	}
	os.Exit(code)
}
