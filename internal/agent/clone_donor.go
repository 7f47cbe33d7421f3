package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
)

// serveClone streams a physical copy of the local instance (docs/cloning.md). One copy is
// served at a time.
func (s *Server) serveClone(w http.ResponseWriter, r *http.Request) {
	if s.engine() == kurav1alpha1.EngineMySQL {
		http.Error(w, "MySQL instances clone with the CLONE plugin over the SQL port, not this stream", http.StatusConflict)
		return
	}
	select {
	case s.cloning <- struct{}{}:
		defer func() { <-s.cloning }()
	default:
		http.Error(w, "a clone is already being served", http.StatusServiceUnavailable)
		return
	}
	before := s.state(r.Context())
	if !before.Reachable {
		http.Error(w, "mysqld: "+before.Error, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", ContentTypeClone)
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	sw, err := newStreamWriter(w, CloneHeader{Engine: before.Engine, Donor: s.PodName, ServerID: before.ServerID,
		Version: before.Version, ExecutedBefore: before.Executed})
	if err != nil {
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed: %v\n", r.RemoteAddr, err)
		return
	}
	opts := s.Backup
	if opts.Stderr == nil {
		opts.Stderr = s.Log
	}
	if err := engine.StreamBackup(r.Context(), s.engine(), opts, sw); err != nil {
		sw.Fail(err)
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed after %d bytes: %v\n", r.RemoteAddr, sw.n, err)
		return
	}
	after := s.state(r.Context())
	if !after.Reachable {
		err := fmt.Errorf("failed to read the executed set after the copy: %s", after.Error)
		sw.Fail(err)
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed: %v\n", r.RemoteAddr, err)
		return
	}
	if err := sw.Close(after.Executed); err != nil {
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed: %v\n", r.RemoteAddr, err)
		return
	}
	fmt.Fprintf(s.Log, "kura agent: served a clone to %s: %d bytes in %s\n", r.RemoteAddr, sw.n, time.Since(start).Round(time.Millisecond))
}

// RecloneMarker is the file on the data volume that asks the next `kura init` to keep the
// data aside and clone afresh.
const RecloneMarker = ".kura-reclone"

// RecloneRequest is the marker's content.
type RecloneRequest struct {
	// Donor is the Pod to clone from first ("" for the best donor).
	Donor     string    `json:"donor,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Requested time.Time `json:"requested"`
}

// serveReclone writes the re-clone marker. It refuses an instance that accepts writes: only
// a replica is ever re-cloned.
func (s *Server) serveReclone(w http.ResponseWriter, r *http.Request) {
	if s.DataDir == "" {
		http.Error(w, "no data directory configured", http.StatusInternalServerError)
		return
	}
	st := s.state(r.Context())
	if st.Reachable && !st.ReadOnly {
		http.Error(w, "refusing to re-clone an instance that accepts writes", http.StatusConflict)
		return
	}
	req := RecloneRequest{Donor: r.URL.Query().Get("donor"), Reason: r.URL.Query().Get("reason"), Requested: time.Now().UTC()}
	if err := writeMarker(s.DataDir, RecloneMarker, req); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(s.Log, "kura agent: re-clone requested (donor %q, reason %q); it happens when the Pod restarts\n", req.Donor, req.Reason)
	writeJSON(w, http.StatusAccepted, req)
}

// writeMarker writes a JSON marker file durably (temporary file, fsync, rename, fsync dir).
func writeMarker(dir, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", name, err)
	}
	return engine.WriteFileDurably(filepath.Join(dir, name), append(b, '\n'), 0o640)
}

// readMarker reads a JSON marker; ok is false when it does not exist.
func readMarker(dir, name string, v any) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("failed to read %s: %w", name, err)
	}
	return true, nil
}

func removeMarker(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	return nil
}
