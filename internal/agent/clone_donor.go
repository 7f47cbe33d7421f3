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
	"github.com/kura-db/kura/internal/seed"
	"github.com/kura-db/kura/internal/tools"
)

// maxClones is how many clones a donor copies at once; further requests wait for a slot
// (never refused: a refusal made a receiver's init fail and crash-loop).
const maxClones = 2

// serveClone streams a physical copy of the local instance (docs/cloning.md). Up to
// maxClones copies run at once; a further request gets its response headers at once and
// waits for a slot.
func (s *Server) serveClone(w http.ResponseWriter, r *http.Request) {
	if s.engine() == kurav1alpha1.EngineMySQL {
		http.Error(w, "MySQL instances clone with the CLONE plugin over the SQL port, not this stream", http.StatusConflict)
		return
	}
	if st := s.state(r.Context()); !st.Reachable {
		http.Error(w, "mysqld: "+st.Error, http.StatusServiceUnavailable)
		return
	}
	encoding := r.URL.Query().Get("encoding")
	if encoding == "" {
		encoding = EncodingGzip
	}
	if encoding != EncodingGzip && encoding != EncodingIdentity {
		http.Error(w, fmt.Sprintf("unknown encoding %q (gzip or identity)", encoding), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", ContentTypeClone)
	w.Header().Set(EncodingHeader, encoding)
	w.WriteHeader(http.StatusOK)
	ww, err := newWireWriter(w, encoding)
	if err != nil {
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed: %v\n", r.RemoteAddr, err)
		return
	}
	if err := ww.Flush(); err != nil {
		return
	}
	select {
	case s.cloning <- struct{}{}:
		defer func() { <-s.cloning }()
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	opts := s.Backup
	log := opts.Stderr
	if log == nil {
		log = s.Log
	}
	local := seed.Local{Engine: s.engine(), Name: s.PodName, Instance: s.Instance, Tools: tools.Runner{TmpDir: opts.TmpDir, Log: log},
		Invocation: tools.Invocation{ServerDefaults: opts.DefaultsFile, Account: tools.Account{User: opts.Endpoint.User,
			Password: opts.Endpoint.Password, Socket: opts.Endpoint.Socket, Host: opts.Endpoint.Host, Port: opts.Endpoint.Port,
			CAFile: opts.Endpoint.CAFile}}}
	if opts.Program != "" {
		local.Tools.Programs = map[string]string{"mariadb-backup": opts.Program}
	}
	sw, err := seed.Copy(r.Context(), local, func(h seed.Header) (*seed.Writer, error) { return seed.NewWriter(ww, h) })
	n := int64(0)
	if sw != nil {
		n = sw.Bytes()
	}
	if err != nil {
		_ = ww.Close()
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed after %d bytes: %v\n", r.RemoteAddr, n, err)
		return
	}
	if err := ww.Close(); err != nil {
		_, _ = fmt.Fprintf(s.Log, "kura agent: clone for %s failed: %v\n", r.RemoteAddr, err)
		return
	}
	fmt.Fprintf(s.Log, "kura agent: served a clone to %s: %d bytes in %s\n", r.RemoteAddr, n, time.Since(start).Round(time.Millisecond))
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
