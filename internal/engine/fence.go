package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
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
const fenceLockWait = 1 // seconds

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
	return i.killOthers(ctx, conn)
}

// killOthers kills every client connection except conn's own.
func (i *instance) killOthers(ctx context.Context, conn *sql.Conn) (int, error) {
	rows, err := conn.QueryContext(ctx, i.d.processlistQuery())
	if err != nil {
		return 0, fmt.Errorf("failed to list connections of %s: %w", i.ep.Address(), err)
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		var user, command sql.NullString
		if err := rows.Scan(&id, &user, &command); err != nil {
			_ = rows.Close()
			return 0, fmt.Errorf("failed to list connections of %s: %w", i.ep.Address(), err)
		}
		if systemUsers[user.String] || systemCommands[command.String] {
			continue
		}
		ids = append(ids, id)
	}
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

// Fence makes the instance refuse writes and returns only once it does (rule 3a): on one
// connection it kills every other client connection first (a commit waiting for an
// acknowledgement ends with an error to its client, never a success), then turns read-only on
// bounded by a lock wait timeout, and repeats both while a new commit got in between, until
// ctx ends. It returns how many connections it killed.
func (i *instance) Fence(ctx context.Context) (int, error) {
	conn, err := i.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(fenceLockWait)); err != nil {
		return 0, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
	}
	killed := 0
	for attempt := 1; ; attempt++ {
		n, err := i.killOthers(ctx, conn)
		killed += n
		if err != nil {
			return killed, fmt.Errorf("failed to fence %s: %w", i.ep.Address(), err)
		}
		err = nil
		for _, s := range i.d.readOnly(true) {
			if _, err = conn.ExecContext(ctx, s.Query, s.Args...); err != nil {
				break
			}
		}
		switch {
		case err == nil:
			return killed, nil
		case !isErrno(err, errnoLockWaitTimeout) || ctx.Err() != nil:
			return killed, fmt.Errorf("failed to fence %s (attempt %d): %w", i.ep.Address(), attempt, err)
		}
		select {
		case <-ctx.Done():
			return killed, fmt.Errorf("failed to fence %s (attempt %d): %w", i.ep.Address(), attempt, ctx.Err())
		case <-time.After(10 * time.Millisecond):
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
