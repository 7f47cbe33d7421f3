package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// A frozen primary (SIGSTOP, a stalled process) answers nobody, so no statement can make it
// read-only; the moment it runs again it answers with read_only OFF until a fence reaches it.
// When the operator fails over from it, it first asks the primary's agent to fence the server
// locally, and when the server does not answer its own agent either, to stop it: the agent
// kills the process (SIGKILL is delivered to a stopped process too), so the old primary can
// never run again as a writable primary after the new one was promoted (docs/clustering.md,
// rule 3c). The Pod shares one process namespace, so the agent sees the server's process.

// Fence outcomes reported by POST /v1/fence.
const (
	// FenceOutcomeFenced: the server answered and is read-only, every other connection killed.
	FenceOutcomeFenced = "Fenced"
	// FenceOutcomeStopped: the server did not answer; it was killed.
	FenceOutcomeStopped = "Stopped"
	// FenceOutcomeNotRunning: no server process runs.
	FenceOutcomeNotRunning = "NotRunning"
)

// FenceResult is what POST /v1/fence answers.
type FenceResult struct {
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"`
}

// answer is the last time the local server answered the agent, and as what.
type answer struct {
	pid             int
	writablePrimary bool
	at              time.Time
}

// pingBudget is how long the local server has to answer before it counts as not answering.
const pingBudget = 500 * time.Millisecond

// noteAnswer records an answer of the server whose pid file said pid before and after it.
func (f *SelfFence) noteAnswer(pidBefore int, writablePrimary bool) {
	pid := readPid(f.PidFile)
	if pid == 0 || pid != pidBefore {
		return // restarted meanwhile: the answer is not this process's
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = answer{pid: pid, writablePrimary: writablePrimary, at: f.Now()}
}

// FenceOrStop fences the local server when it answers; when it does not, it kills the server
// process, but only the very process that last answered as a writable semi-sync primary (a
// server starting up, or one that was a replica, is left alone).
func (f *SelfFence) FenceOrStop(ctx context.Context) (FenceResult, error) {
	f.defaults()
	pctx, cancel := context.WithTimeout(ctx, pingBudget)
	err := f.Fencer.Ping(pctx)
	cancel()
	var answered *mysql.MySQLError
	if err == nil || errors.As(err, &answered) {
		if _, err := f.Fencer.Fence(ctx); err != nil {
			return FenceResult{}, fmt.Errorf("failed to fence the local server: %w", err)
		}
		return FenceResult{Outcome: FenceOutcomeFenced, Message: "read-only, every other connection killed"}, nil
	}
	pid := readPid(f.PidFile)
	if pid == 0 || !alive(pid) {
		return FenceResult{Outcome: FenceOutcomeNotRunning, Message: "no server process runs"}, nil
	}
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	if last.pid != pid || !last.writablePrimary {
		return FenceResult{}, fmt.Errorf("the local server (pid %d) does not answer (%v), but it did not last answer as a writable primary: left alone", pid, err)
	}
	if !isServer(pid) {
		return FenceResult{}, fmt.Errorf("pid %d from %s is not a database server: left alone", pid, f.PidFile)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return FenceResult{}, fmt.Errorf("failed to stop the frozen server (pid %d): %w", pid, err)
	}
	// Once the process has exited (a zombie until its parent reaps it) its sockets are closed.
	for alive(pid) {
		select {
		case <-ctx.Done():
			return FenceResult{}, fmt.Errorf("the frozen server (pid %d) was killed but has not exited: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Fprintf(f.Log, "kura agent: the local server (pid %d) stopped answering %s after it last answered as a writable primary: killed it\n",
		pid, f.Now().Sub(last.at).Round(time.Millisecond))
	return FenceResult{Outcome: FenceOutcomeStopped, Message: fmt.Sprintf("the server (pid %d) did not answer (%v): killed", pid, err)}, nil
}

// readPid reads a pid file; 0 when there is none.
func readPid(path string) int {
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses; the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// isServer reports whether pid runs mariadbd or mysqld.
func isServer(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	switch strings.TrimSpace(string(b)) {
	case "mariadbd", "mysqld":
		return true
	}
	return false
}

func (s *Server) serveFence(w http.ResponseWriter, r *http.Request) {
	if s.Guard == nil {
		http.Error(w, "this agent does not guard its server", http.StatusNotImplemented)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 4*time.Second)
	defer cancel()
	res, err := s.Guard.FenceOrStop(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
