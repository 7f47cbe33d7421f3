package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// Server is the agent's HTTP API. /healthz says the agent runs; /readyz says the local mysqld
// accepts the agent's credentials. Everything under /v1 needs `Authorization: Bearer <agent
// password>`.
type Server struct {
	Instance engine.Instance
	// Engine of the local instance (default MariaDB).
	Engine kurav1alpha1.Engine
	// Token is the agent password; when empty every /v1 request is refused.
	Token string
	// TokenFunc, when set, is asked for the agent password on every request instead of Token,
	// so a rotated password file takes effect without a restart.
	TokenFunc func() string
	// PodName names this instance in clone headers.
	PodName string
	// DataDir is the local data directory (initialised marker, re-clone marker).
	DataDir string
	// Backup says how to copy the local instance.
	Backup engine.BackupOptions
	// Log receives one line per clone served and the backup program's log (default stderr).
	Log io.Writer
	// Guard fences the local server, or stops it when it is frozen (POST /v1/fence).
	Guard interface {
		FenceOrStop(ctx context.Context) (FenceResult, error)
	}

	cloning chan struct{}
}

// Handler returns the agent's routes.
func (s *Server) Handler() http.Handler {
	s.cloning = make(chan struct{}, maxClones)
	if s.Log == nil {
		s.Log = os.Stderr
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Instance.Ping(ctx); err != nil {
			http.Error(w, "mysqld: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /v1/state", s.auth(http.HandlerFunc(s.serveState)))
	mux.Handle("GET /v1/clone", s.auth(http.HandlerFunc(s.serveClone)))
	mux.Handle("POST /v1/reclone", s.auth(http.HandlerFunc(s.serveReclone)))
	mux.Handle("POST /v1/fence", s.auth(http.HandlerFunc(s.serveFence)))
	return mux
}

// auth checks the bearer token in constant time.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		token := s.Token
		if s.TokenFunc != nil {
			token = s.TokenFunc()
		}
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kura-agent"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// State is what GET /v1/state reports.
type State struct {
	Pod    string `json:"pod"`
	Engine string `json:"engine"`
	// Initialized: the data directory carries the initialised marker.
	Initialized bool `json:"initialized"`
	// Reachable: the local server answered; the fields below are only meaningful then.
	Reachable bool   `json:"reachable"`
	ReadOnly  bool   `json:"readOnly"`
	Executed  string `json:"executed"`
	ServerID  uint32 `json:"serverID"`
	Version   string `json:"version"`
	Error     string `json:"error,omitempty"`
}

func (s *Server) state(ctx context.Context) State {
	st := State{Pod: s.PodName, Engine: string(s.engine()), Initialized: s.DataDir != "" && engine.Initialized(s.DataDir)}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	es := s.Instance.Status(ctx)
	st.Reachable = es.Reachable && es.Error == ""
	st.Error = es.Error
	if !es.Reachable && es.Error == "" {
		st.Error = "mysqld is not reachable"
	}
	st.ReadOnly, st.ServerID, st.Version = es.ReadOnly, es.ServerID, es.Version
	st.Executed = es.ExecutedGTID.String()
	return st
}

func (s *Server) engine() kurav1alpha1.Engine {
	if s.Engine == "" {
		return kurav1alpha1.EngineMariaDB
	}
	return s.Engine
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	st := s.state(r.Context())
	code := http.StatusOK
	if !st.Reachable {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Run is `kura agent`: it serves until ctx ends. The passwords it needs are files in credDir.
func Run(ctx context.Context, addr, credDir string) error {
	e, err := LoadEnv(credDir, contract.AgentCredentialKeys)
	if err != nil {
		return err
	}
	ep := engine.Endpoint{Host: "127.0.0.1", Port: contract.MySQLPort, User: engine.AgentUser, Password: e.AgentPassword}
	if ep.TLS, err = engine.LocalTLS(contract.TLSCAFile); err != nil {
		return err
	}
	if ep.TLS != nil {
		ep.CAFile = contract.TLSCAFile
	}
	inst, err := engine.Open(e.Engine, ep, engine.Options{})
	if err != nil {
		return fmt.Errorf("failed to open the local instance: %w", err)
	}
	defer func() { _ = inst.Close() }()
	guard, stopFence, err := startSelfFence(ctx, e, ep)
	if err != nil {
		return err
	}
	defer stopFence()
	token := &credentialFile{dir: credDir, key: contract.KeyAgentToken, last: e.AgentToken}
	api := &Server{Instance: inst, Engine: e.Engine, TokenFunc: token.Get, PodName: e.PodName, DataDir: contract.DataDir,
		Backup: engine.BackupOptions{DefaultsFile: contract.ConfigFile, Endpoint: ep}, Guard: guard}
	// With TLS on, the agent serves HTTPS with the instance's server certificate, re-read as
	// it is renewed (docs/security.md, "The agent API").
	tlsConfig := servingTLS(contract.TLSCertFile, contract.TLSKeyFile, os.Stderr)
	// No write timeout: a clone stream lasts as long as the copy.
	srv := &http.Server{Addr: addr, Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConfig}
	errc := make(chan error, 1)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { errc <- srv.ListenAndServeTLS("", "") }()
	} else {
		go func() { errc <- srv.ListenAndServe() }()
	}
	fmt.Fprintf(os.Stderr, "kura agent: serving %s on %s for %s\n", scheme, addr, e.PodName)
	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("failed to shut down: %w", err)
		}
		return nil
	}
}
