package chaos

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kura-db/kura/test/e2eutil"
)

// writerTimeouts bound each statement of the writer: a commit that hangs (a partitioned
// primary waiting for an acknowledgement) ends as an ambiguous result after IO.
var writerTimeouts = e2eutil.Timeouts{Dial: time.Second, IO: 2 * time.Second}

// ack is one acknowledged write: the server answered OK to the INSERT's commit.
type ack struct {
	ID int64
	At time.Time
}

// ambiguous is a write whose statement was sent but whose outcome the client never learned
// (the connection broke or timed out after sending, or the server killed the connection). It
// may or may not have committed; it is not acknowledged.
type ambiguous struct {
	ID  int64
	At  time.Time
	Err string
}

// writer inserts unique ids, one autocommit INSERT at a time, through the primary Service, and
// keeps the ledger: every acknowledged id with the time of its acknowledgement, and the ids
// whose outcome is unknown.
type writer struct {
	host, user, password, table string
	round                       int

	mu        sync.Mutex
	acked     []ack
	ambiguous []ambiguous
	refused   int // errors that prove the write did not happen (not sent, or rejected)
	lastErr   string
	next      int64

	stop, done chan struct{}
}

func startWriter(host, user, password, table string, round int, first int64) *writer {
	w := &writer{host: host, user: user, password: password, table: table, round: round, next: first,
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	db := e2eutil.OpenDB(w.host, w.user, w.password, writerTimeouts)
	defer func() { _ = db.Close() }()
	q := fmt.Sprintf("INSERT INTO %s (id, round) VALUES (?, ?)", w.table)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		id := w.next
		w.next++
		_, err := db.Exec(q, id, w.round)
		now := time.Now()
		w.mu.Lock()
		switch {
		case err == nil:
			w.acked = append(w.acked, ack{ID: id, At: now})
		case notCommitted(err):
			w.refused++
			w.lastErr = err.Error()
		default:
			w.ambiguous = append(w.ambiguous, ambiguous{ID: id, At: now, Err: err.Error()})
			w.lastErr = err.Error()
		}
		w.mu.Unlock()
		if err != nil {
			// The Service may lead elsewhere now: a new connection, after a short pause so a
			// refused connection does not spin.
			_ = db.Close()
			db = e2eutil.OpenDB(w.host, w.user, w.password, writerTimeouts)
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// notCommitted reports whether err proves the INSERT did not commit: the connection was never
// made, or the server rejected the statement before executing it.
func notCommitted(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
			1836,                   // ER_READ_ONLY_MODE
			1044, 1045, 1142, 1227, // access denied
			1049, 1146: // unknown database or table
			return true
		}
	}
	return false
}

// ackedSince reports whether a write was acknowledged after t.
func (w *writer) ackedSince(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked) > 0 && w.acked[len(w.acked)-1].At.After(t)
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) lastError() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// halt stops the writer and returns its ledger.
func (w *writer) halt() (acked []ack, amb []ambiguous, refused int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acked...), append([]ambiguous(nil), w.ambiguous...), w.refused
}

// longestGap is the longest time between consecutive acknowledgements from the last one
// before from to the first one after to (the write unavailability around a fault), and
// where it began.
func longestGap(acked []ack, from, to time.Time) (time.Duration, time.Time) {
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(acked); i++ {
		a, b := acked[i-1].At, acked[i].At
		if b.Before(from) || a.After(to) {
			continue
		}
		if d := b.Sub(a); d > gap {
			gap, at = d, a
		}
	}
	return gap, at
}

// rowsIn returns the ids of the table within [lo, hi] on one instance.
func rowsIn(db *sql.DB, table string, lo, hi int64) (map[int64]bool, error) {
	rows, err := db.Query(fmt.Sprintf("SELECT id FROM %s WHERE id BETWEEN ? AND ?", table), lo, hi)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	return have, rows.Err()
}
