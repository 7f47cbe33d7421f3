package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// Server is the agent's HTTP API. /healthz says the agent runs; /readyz says the local mysqld
// accepts the agent's credentials.
type Server struct {
	Instance engine.Instance
}

// Handler returns the agent's routes.
func (s *Server) Handler() http.Handler {
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
	return mux
}

// Run is `kura agent`: it serves until ctx ends.
func Run(ctx context.Context, addr string) error {
	e, err := EnvFromOS()
	if err != nil {
		return err
	}
	inst, err := engine.Open(e.Engine, engine.Endpoint{Host: "127.0.0.1", Port: mycnf.Port, User: engine.AgentUser, Password: e.AgentPassword}, engine.Options{})
	if err != nil {
		return fmt.Errorf("failed to open the local instance: %w", err)
	}
	defer func() { _ = inst.Close() }()
	srv := &http.Server{Addr: addr, Handler: (&Server{Instance: inst}).Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Fprintf(os.Stderr, "kura agent: serving on %s for %s\n", addr, e.PodName)
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
