package clustering

import (
	"context"
	"errors"
	"fmt"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
)

// Traits returns what clustering must know about an engine: MariaDB's primary waits for one
// acknowledgement whatever the count; MySQL's for any number.
func Traits(kind kurav1alpha1.Engine) EngineTraits {
	if kind == kurav1alpha1.EngineMySQL {
		return EngineTraits{MaxAckCount: 0}
	}
	return EngineTraits{MaxAckCount: 1}
}

// EngineSQL gives the loop SQL access to one instance through the engine package. The
// operator builds one per instance (and keeps it across passes, since it owns a pool).
type EngineSQL struct {
	Instance engine.Instance
	// ReplicationUser and ReplicationPassword are the account replicas connect to their
	// source with.
	ReplicationUser     string
	ReplicationPassword string
}

var _ SQL = (*EngineSQL)(nil)

// Facts maps the engine's status to SQLFacts. A partial observation is an error: deciding on
// a missing GTID set could make a replica look errant or a candidate look complete.
func (e *EngineSQL) Facts(ctx context.Context) (*SQLFacts, error) {
	st := e.Instance.Status(ctx)
	if !st.Reachable {
		return nil, errors.New(st.Error)
	}
	if st.Error != "" {
		return nil, fmt.Errorf("incomplete observation: %s", st.Error)
	}
	f := &SQLFacts{
		ServerID: st.ServerID,
		ReadOnly: st.ReadOnly || st.SuperReadOnly,
		Executed: st.ExecutedGTID,
		SemiSync: SemiSyncFacts{
			SourceEnabled:  st.SemiSync.SourceEnabled,
			ReplicaEnabled: st.SemiSync.ReplicaEnabled,
			WaitCount:      st.SemiSync.WaitCount,
			AfterSync:      st.SemiSync.WaitPoint == "AFTER_SYNC",
		},
	}
	if r := st.Replica; r != nil {
		f.Retrieved = st.RetrievedGTID
		rf := &ReplicaFacts{SourceHost: r.SourceHost, SourcePort: r.SourcePort,
			IORunning: r.IOThread == engine.ThreadRunning, IOConnecting: r.IOThread == engine.ThreadConnecting,
			SQLRunning: r.SQLThread == engine.ThreadRunning,
			IOErrno:    r.LastIOErrno, IOError: r.LastIOError, SQLErrno: r.LastSQLErrno, SQLError: r.LastSQLError}
		if r.SecondsBehindSource != nil {
			lag := time.Duration(*r.SecondsBehindSource) * time.Second
			rf.Lag = &lag
		}
		f.Replica = rf
	}
	return f, nil
}

// Executed reads the executed GTID set.
func (e *EngineSQL) Executed(ctx context.Context) (gtid.Set, error) {
	return e.Instance.ExecutedGTID(ctx)
}

// StopReceiver stops the I/O thread and keeps every received transaction: when the applier is
// stopped too, it is restarted on the relay log by file position (engine ApplyRelayLog), because
// on MariaDB a later START SLAVE in GTID mode would discard the relay log — and with the primary
// gone, that relay log may be the only copy of an acknowledged write (docs/engines.md).
//
// When the relay log cannot be applied, the receiver is still stopped (the fence must hold
// whatever happens to the applier) and the apply error is returned: the step fails visibly,
// and the next pass finds the receiver stopped and waits for the candidate's applied set,
// which refuses a failover to an instance that cannot reach what it acknowledged.
func (e *EngineSQL) StopReceiver(ctx context.Context) error {
	err := e.Instance.ApplyRelayLog(ctx)
	if err == nil {
		return nil
	}
	stopErr := e.Instance.StopReplication(ctx, engine.IOThread)
	if errors.Is(err, engine.ErrNoRelayLog) {
		return stopErr // nothing was received: stopping the receiver is all there is to do
	}
	return errors.Join(err, stopErr)
}

// SetReadOnly turns read-only on or off.
func (e *EngineSQL) SetReadOnly(ctx context.Context, on bool) error {
	return e.Instance.SetReadOnly(ctx, on)
}

// Fence kills the other client connections and turns read-only on until it holds.
func (e *EngineSQL) Fence(ctx context.Context) error {
	_, err := e.Instance.Fence(ctx)
	return err
}

// Shutdown stops the server.
func (e *EngineSQL) Shutdown(ctx context.Context) error { return e.Instance.Shutdown(ctx) }

// WaitExecuted waits until set is executed or ctx ends.
func (e *EngineSQL) WaitExecuted(ctx context.Context, set gtid.Set) error {
	timeout := time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return e.Instance.WaitForGTID(ctx, set, timeout)
}

// ResetReplication stops replication and forgets the source.
func (e *EngineSQL) ResetReplication(ctx context.Context) error {
	return e.Instance.StopReplicaAndReset(ctx)
}

// ReplicateFrom sets the semi-sync replica role (which turns the source role off), points the
// instance at host:port and starts both threads. The receiver is restarted so a changed
// semi-sync role takes effect.
func (e *EngineSQL) ReplicateFrom(ctx context.Context, host string, port int, semiSync bool) error {
	role := engine.RoleNone
	if semiSync {
		role = engine.RoleReplica
	}
	if err := e.Instance.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: role}); err != nil {
		return err
	}
	if err := e.Instance.StopReplication(ctx, engine.IOThread); err != nil {
		return err
	}
	src := engine.Source{Host: host, Port: port, User: e.ReplicationUser, Password: e.ReplicationPassword}
	if err := e.Instance.ConfigureReplica(ctx, src); err != nil {
		return err
	}
	return e.Instance.StartReplication(ctx, engine.BothThreads)
}

// ConfigureSemiSyncSource sets the primary's semi-sync role; waitCount 0 turns it off.
func (e *EngineSQL) ConfigureSemiSyncSource(ctx context.Context, enabled bool, waitCount int) error {
	if !enabled {
		waitCount = 0
	}
	return e.Instance.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: waitCount})
}

// Variables reads global variables.
func (e *EngineSQL) Variables(ctx context.Context, names []string) (map[string]string, error) {
	return e.Instance.GlobalVariables(ctx, names)
}

// SetGlobal sets a dynamic variable.
func (e *EngineSQL) SetGlobal(ctx context.Context, name, value string) error {
	return e.Instance.SetGlobal(ctx, name, value)
}
