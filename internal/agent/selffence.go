package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// SelfFence makes a primary cut off from the operator and from every other instance read-only
// by itself (docs/clustering.md, "Self-fencing"). On the other side of the partition the
// operator fails over after the grace period; without this, clients on the primary's side
// would keep seeing a writable primary (their commits wait for an acknowledgement that never
// comes, but reads and the read_only flag say "primary") until the partition heals.
//
// It acts only on an instance that accepts writes and waits for semi-sync acknowledgements (a
// single-instance cluster never fences itself), and only when, for longer than Grace, no
// operator connection has run a statement and no other instance's agent has answered.
type SelfFence struct {
	// Observer reads the local server (the agent's account: PROCESS is enough).
	Observer *sql.DB
	// Fencer makes the local server read-only (the operator's account).
	Fencer engine.Instance
	// OperatorUser is the account the operator connects with.
	OperatorUser string
	// Peers are the other instances' agents.
	Peers []*Client
	// Grace is the operator's failover grace period.
	Grace time.Duration
	// Interval between checks (default 250ms).
	Interval time.Duration
	// PidFile is the local server's pid file (FenceOrStop).
	PidFile string
	// Log receives one line per fence (default io.Discard).
	Log io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time

	// lastOperator and lastPeer are when the operator last ran a statement here and when a
	// peer last answered.
	lastOperator, lastPeer time.Time

	mu   sync.Mutex
	last answer // the server's last answer (FenceOrStop)
	// acks is the server's count of transactions a replica acknowledged, at the last check.
	acks int64
}

func (f *SelfFence) defaults() {
	if f.Interval <= 0 {
		f.Interval = 250 * time.Millisecond
	}
	if f.Log == nil {
		f.Log = io.Discard
	}
	if f.Now == nil {
		f.Now = time.Now
	}
}

// Run checks every Interval until ctx ends.
func (f *SelfFence) Run(ctx context.Context) {
	f.defaults()
	f.lastOperator, f.lastPeer = f.Now(), f.Now()
	t := time.NewTicker(f.Interval)
	defer t.Stop()
	for {
		if fenced, err := f.Check(ctx); err != nil {
			fmt.Fprintf(f.Log, "kura agent: self-fence check: %v\n", err)
		} else if fenced {
			fmt.Fprintf(f.Log, "kura agent: no operator contact and no other instance reachable for %s: made this primary read-only\n", f.Grace)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check runs one check and fences when it must; it reports whether it fenced.
func (f *SelfFence) Check(ctx context.Context) (bool, error) {
	f.defaults()
	if f.lastOperator.IsZero() {
		f.lastOperator, f.lastPeer = f.Now(), f.Now()
	}
	cctx, cancel := context.WithTimeout(ctx, f.Interval+time.Second)
	defer cancel()
	var readOnly, semiSync int
	pid := readPid(f.PidFile)
	if err := f.Observer.QueryRowContext(cctx, "SELECT @@read_only, @@rpl_semi_sync_master_enabled").Scan(&readOnly, &semiSync); err != nil {
		return false, fmt.Errorf("failed to read the local server's state: %w", err)
	}
	f.noteAnswer(pid, readOnly == 0 && semiSync != 0)
	now := f.Now()
	if idle, ok, err := f.operatorIdle(cctx); err != nil {
		return false, err
	} else if ok && now.Add(-idle).After(f.lastOperator) {
		f.lastOperator = now.Add(-idle)
	}
	if readOnly != 0 || semiSync == 0 {
		f.lastPeer = now // not a primary waiting for replicas: nothing to guard
		return false, nil
	}
	if f.replicaAcknowledged(cctx) || f.anyPeerAnswers(cctx) {
		f.lastPeer = f.Now()
	}
	now = f.Now()
	if now.Sub(f.lastOperator) <= f.Grace || now.Sub(f.lastPeer) <= f.Grace {
		return false, nil
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if _, err := f.Fencer.Fence(fctx); err != nil {
		return false, fmt.Errorf("failed to make the cut-off primary read-only: %w", err)
	}
	return true, nil
}

// operatorIdle is how long the operator's most recent connection has been idle (the
// processlist's TIME, in seconds); ok is false when the operator has no connection here.
func (f *SelfFence) operatorIdle(ctx context.Context) (time.Duration, bool, error) {
	rows, err := f.Observer.QueryContext(ctx, "SELECT TIME FROM information_schema.PROCESSLIST WHERE USER = ?", f.OperatorUser)
	if err != nil {
		return 0, false, fmt.Errorf("failed to list the operator's connections: %w", err)
	}
	defer func() { _ = rows.Close() }()
	best, ok := time.Duration(0), false
	for rows.Next() {
		var secs string
		if err := rows.Scan(&secs); err != nil {
			return 0, false, fmt.Errorf("failed to list the operator's connections: %w", err)
		}
		n, err := strconv.ParseFloat(secs, 64)
		if err != nil {
			continue
		}
		if d := time.Duration(n * float64(time.Second)); !ok || d < best {
			best, ok = d, true
		}
	}
	return best, ok, rows.Err()
}

// replicaAcknowledged reports whether a replica acknowledged a transaction since the last
// check: then the primary is not cut off from its replicas, whatever the peers' agents answer
// (under load or with slow name resolution a /healthz can miss its deadline, and a primary
// that fenced itself while its replicas acknowledged stopped every write).
func (f *SelfFence) replicaAcknowledged(ctx context.Context) bool {
	var name string
	var n int64
	if err := f.Observer.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'").Scan(&name, &n); err != nil {
		return false
	}
	grew := f.acks != 0 && n > f.acks
	f.acks = n
	return grew
}

// anyPeerAnswers asks every peer's agent for /healthz at once, within a second; any HTTP
// answer counts.
func (f *SelfFence) anyPeerAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	answered := make(chan struct{}, len(f.Peers))
	for _, peer := range f.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var se *StatusError
			if err := peer.Healthz(ctx); err == nil || errors.As(err, &se) {
				answered <- struct{}{}
			}
		}()
	}
	wg.Wait()
	return len(answered) > 0
}

// startSelfFence runs SelfFence for the local instance in the background; the returned func
// stops it. The grace period comes from KURA_FAILOVER_GRACE (the cluster's
// failoverGracePeriod); the peers are the other ordinals' agents.
func startSelfFence(ctx context.Context, e Env, agentEP engine.Endpoint) (*SelfFence, func(), error) {
	grace, err := time.ParseDuration(os.Getenv("KURA_FAILOVER_GRACE"))
	if err != nil || grace <= 0 {
		return nil, nil, fmt.Errorf("KURA_FAILOVER_GRACE %q is not a positive duration", os.Getenv("KURA_FAILOVER_GRACE"))
	}
	conn, err := engine.Connector(agentEP, engine.Options{ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open the local instance: %w", err)
	}
	observer := sql.OpenDB(conn)
	opEP := agentEP
	opEP.User, opEP.Password = engine.OperatorUser, e.OperatorPassword
	fencer, err := engine.Open(e.Engine, opEP, engine.Options{ConnectTimeout: time.Second})
	if err != nil {
		_ = observer.Close()
		return nil, nil, fmt.Errorf("failed to open the local instance: %w", err)
	}
	var peers []*Client
	for _, p := range PeersOf(e, contract.AgentPort) {
		peers = append(peers, p.Client)
	}
	f := &SelfFence{Observer: observer, Fencer: fencer, OperatorUser: engine.OperatorUser, Peers: peers, Grace: grace,
		PidFile: contract.PidFile, Log: os.Stderr}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
	return f, func() {
		cancel()
		<-done
		_ = fencer.Close()
		_ = observer.Close()
	}, nil
}
