package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Server errors the fence handles.
const (
	errnoLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT: read_only waited behind a commit
	errnoNoSuchThread    = 1094 // ER_NO_SUCH_THREAD: the connection ended by itself
)

// fenceLockWait bounds each attempt to turn read-only on (rule 3a): a commit waiting for a
// semi-sync acknowledgement that never comes would otherwise hold the statement forever.
const fenceLockWait = 2 // seconds

// systemCommands are processlist commands of replication and server threads, never killed.
var systemCommands = map[string]bool{
	"Binlog Dump": true, "Binlog Dump GTID": true, "Daemon": true,
	"Slave_IO": true, "Slave_SQL": true, "Slave_worker": true,
}

var systemUsers = map[string]bool{"system user": true, "event_scheduler": true, "": true}

// KillClientConnections kills every client connection but the one it runs on, chosen by
// connection id, never by account: an account spared by name (the operator's own, or one a
// user shares with it) could keep writing through a fence. Replication and server threads are
// kept. It returns how many it killed.
func (i *instance) KillClientConnections(ctx context.Context) (int, error) {
	conn, err := i.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("failed to connect to %s: %w", i.ep.Address(), err)
	}
	defer func() { _ = conn.Close() }()
	return i.killOthers(ctx, conn, 0)
}

// killOthers kills every client connection except conn's own.
//
// Connections waiting for a semi-sync acknowledgement are killed last. MariaDB commits in
// groups, and the group's leader waits for the acknowledgement on behalf of every member: when
// the leader's wait ends because it was killed, the other members commit and their clients are
// told so, without any replica having the transactions. Measured: one such write in a fence
// that killed in processlist order (TestMariaDBFenceCompletesBehindWaitingCommits). Killed
// first, the members' connections are closed before the leader lets them go, so none of their
// clients ever sees a success.
func (i *instance) killOthers(ctx context.Context, conn *sql.Conn, keep uint64) (int, error) {
	rows, err := conn.QueryContext(ctx, i.d.processlistQuery())
	if err != nil {
		return 0, fmt.Errorf("failed to list connections of %s: %w", i.ep.Address(), err)
	}
	var ids, waiting []uint64
	for rows.Next() {
		var id uint64
		var user, command, state sql.NullString
		if err := rows.Scan(&id, &user, &command, &state); err != nil {
			_ = rows.Close()
			return 0, fmt.Errorf("failed to list connections of %s: %w", i.ep.Address(), err)
		}
		switch {
		case id == keep || systemUsers[user.String] || systemCommands[command.String]:
		case strings.Contains(strings.ToLower(state.String), "semi-sync"):
			waiting = append(waiting, id)
		default:
			ids = append(ids, id)
		}
	}
	ids = append(ids, waiting...)
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return 0, fmt.Errorf("failed to list connections of %s: %w", i.ep.Address(), err)
	}
	_ = rows.Close()
	killed := 0
	for _, id := range ids {
		if _, err := conn.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil {
			if isErrno(err, errnoNoSuchThread) {
				continue
			}
			return killed, fmt.Errorf("failed to kill connection %d on %s: %w", id, i.ep.Address(), err)
		}
		killed++
	}
	return killed, nil
}

// Fence makes the instance refuse writes and returns only once it does (rule 3a).
//
// One connection sets read_only, bounded by a lock wait timeout: from its first moment it
// holds the global read lock, so no new write starts, and it waits for the commits in flight.
// Meanwhile a second connection kills every other client connection, commits waiting for an
// acknowledgement last (see killOthers), again and again until read_only holds: a killed
// commit's client gets an error, never a success, and once no commit is left in flight
// read_only completes. A lock wait timeout starts the round again until ctx ends. It returns
// how many connections it killed.
func (i *instance) Fence(ctx context.Context) (int, error) {
	ro, err := i.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	defer func() { _ = ro.Close() }()
	killer, err := i.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	defer func() { _ = killer.Close() }()
	var roID uint64
	if err := ro.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&roID); err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	if _, err := ro.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(fenceLockWait)); err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	killed := 0
	for attempt := 1; ; attempt++ {
		done := make(chan error, 1)
		go func() {
			var err error
			for _, s := range i.d.readOnly(true) {
				if _, err = ro.ExecContext(ctx, s.Query, s.Args...); err != nil {
					break
				}
			}
			done <- err
		}()
		var err error
	round:
		for {
			n, kerr := i.killOthers(ctx, killer, roID)
			killed += n
			if kerr != nil && ctx.Err() == nil {
				if err = <-done; err != nil { // read-only may hold all the same
					err = errors.Join(kerr, err)
				}
				break round
			}
			select {
			case err = <-done:
				break round
			case <-time.After(20 * time.Millisecond):
			}
		}
		switch {
		case err == nil:
			return killed, nil
		case !isErrno(err, errnoLockWaitTimeout) || ctx.Err() != nil:
			return killed, fmt.Errorf("failed to fence %s (attempt %d): %w", i.ep.Address(), attempt, err)
		}
	}
}

// Shutdown asks the server to stop (the last resort of a fence that cannot complete): its
// clients are disconnected and nothing more is acknowledged. The Pod restarts it read-only.
func (i *instance) Shutdown(ctx context.Context) error {
	_, err := i.db.ExecContext(ctx, "SHUTDOWN")
	if err == nil || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) {
		return nil // the server closes the connection as it goes
	}
	return fmt.Errorf("failed to shut down %s: %w", i.ep.Address(), err)
}

func isErrno(err error, n uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}
