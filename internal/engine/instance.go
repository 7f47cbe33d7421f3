package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/gtid"
)

// instance implements Instance over database/sql for any dialect.
type instance struct {
	d    dialect
	ep   Endpoint
	opts Options
	db   *sql.DB
}

func newInstance(d dialect, ep Endpoint, opts Options) *instance {
	connector, err := mysql.NewConnector(driverConfig(ep, opts))
	if err != nil {
		// NewConnector only fails on an invalid configuration, which driverConfig never builds.
		panic(fmt.Sprintf("engine: invalid driver configuration: %v", err))
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	db.SetConnMaxLifetime(10 * time.Minute)
	return &instance{d: d, ep: ep, opts: opts, db: db}
}

func (i *instance) Engine() kurav1alpha1.Engine { return i.d.engine() }
func (i *instance) Flavor() gtid.Flavor         { return i.d.flavor() }
func (i *instance) Endpoint() Endpoint          { return i.ep }
func (i *instance) Close() error                { return i.db.Close() }

func (i *instance) Ping(ctx context.Context) error {
	ctx, cancel := i.bound(ctx, i.opts.ConnectTimeout+i.opts.ReadTimeout)
	defer cancel()
	if err := i.db.PingContext(ctx); err != nil {
		return fmt.Errorf("failed to connect to %s as %s: %w", i.ep.Address(), i.ep.User, err)
	}
	return nil
}

// bound returns ctx limited to d unless it already ends earlier.
func (i *instance) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func (i *instance) exec(ctx context.Context, what string, stmts ...stmt) error {
	for _, s := range stmts {
		if _, err := i.db.ExecContext(ctx, s.Query, s.Args...); err != nil {
			return fmt.Errorf("failed to %s on %s: %w", what, i.ep.Address(), err)
		}
	}
	return nil
}

// queryRows returns every row as column -> value; NULL columns are absent.
func (i *instance) queryRows(ctx context.Context, q string, args ...any) ([]map[string]string, error) {
	rows, err := i.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for k := range vals {
			ptrs[k] = &vals[k]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]string, len(cols))
		for k, c := range cols {
			if vals[k].Valid {
				row[c] = vals[k].String
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// queryPairs reads a SHOW ... LIKE result (Variable_name, Value) into a map.
func (i *instance) queryPairs(ctx context.Context, q string) (map[string]string, error) {
	rows, err := i.queryRows(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r["Variable_name"]] = r["Value"]
	}
	return out, nil
}

// isServerError reports whether err came from the server (so the server is reachable).
func isServerError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// IsAccessDenied reports whether err is the server refusing the credentials.
func IsAccessDenied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1045 || me.Number == 1044 || me.Number == 1698)
}

func (i *instance) Status(ctx context.Context) Status {
	ctx, cancel := i.bound(ctx, i.opts.StatusTimeout)
	defer cancel()
	st := Status{}
	defer func() { st.ObservedAt = time.Now() }()
	globals, err := i.queryRows(ctx, i.d.globalsQuery())
	if err == nil && len(globals) != 1 {
		err = fmt.Errorf("got %d rows of global variables", len(globals))
	}
	if err != nil {
		st.Reachable = isServerError(err)
		st.Error = fmt.Sprintf("failed to read global variables of %s: %v", i.ep.Address(), err)
		st.ObservedAt = time.Now()
		return st
	}
	st.Reachable = true
	var problems []string
	if err := i.d.parseGlobals(globals[0], &st); err != nil {
		problems = append(problems, err.Error())
	}
	st.RetrievedGTID = st.ExecutedGTID
	if rows, err := i.queryRows(ctx, i.d.replicaStatusQuery()); err != nil {
		problems = append(problems, fmt.Sprintf("failed to read replica status: %v", err))
	} else if len(rows) > 0 {
		rs, err := parseReplicaStatus(i.d, rows[0])
		if err != nil {
			problems = append(problems, err.Error())
		}
		st.Replica = rs
		st.RetrievedGTID = st.ExecutedGTID.Union(rs.ReceivedGTID)
	}
	if err := i.semiSyncStatus(ctx, &st.SemiSync); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		st.Error = fmt.Sprint(problems)
		if ctx.Err() != nil {
			st.Reachable = false // a server that stops answering mid-observation is not reachable
		}
	}
	st.ObservedAt = time.Now()
	return st
}

// parseReplicaStatus reads one row of SHOW SLAVE/REPLICA STATUS.
func parseReplicaStatus(d dialect, row map[string]string) (*ReplicaStatus, error) {
	c := d.columns()
	rs := &ReplicaStatus{
		SourceHost:    row[c.host],
		SourcePort:    int(parseInt(row[c.port])),
		SourceUser:    row[c.user],
		IOThread:      ThreadState(row[c.io]),
		SQLThread:     ThreadState(row[c.sql]),
		IOState:       row[c.ioState],
		SQLState:      row[c.sqlState],
		LastIOErrno:   int(parseInt(row["Last_IO_Errno"])),
		LastIOError:   row["Last_IO_Error"],
		LastSQLErrno:  int(parseInt(row["Last_SQL_Errno"])),
		LastSQLError:  row["Last_SQL_Error"],
		UsingGTID:     d.parseUsingGTID(row),
		RelayLogSpace: parseInt(row["Relay_Log_Space"]),
		TLS:           row[c.sslAllowed] == "Yes" && row[c.sslVerify] == "Yes",
	}
	if v, ok := row[c.seconds]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			rs.SecondsBehindSource = &n
		}
	}
	received, err := gtid.Parse(d.flavor(), row[c.received])
	if err != nil {
		return rs, fmt.Errorf("failed to read received GTID set: %w", err)
	}
	rs.ReceivedGTID = received
	return rs, nil
}

func (i *instance) semiSyncStatus(ctx context.Context, s *SemiSyncStatus) error {
	n := i.d.semiSync()
	vars, err := i.queryPairs(ctx, "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'")
	if err != nil {
		return fmt.Errorf("failed to read semi-sync variables: %w", err)
	}
	status, err := i.queryPairs(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'")
	if err != nil {
		return fmt.Errorf("failed to read semi-sync status: %w", err)
	}
	s.SourceEnabled = parseBool(vars[n.sourceEnabled])
	s.ReplicaEnabled = parseBool(vars[n.replicaEnabled])
	s.WaitPoint = vars[n.waitPoint]
	s.Timeout = time.Duration(parseInt(vars[n.timeout])) * time.Millisecond
	s.WaitCount = 1
	if n.waitCount != "" {
		s.WaitCount = int(parseInt(vars[n.waitCount]))
	}
	s.SourceActive = parseBool(status[n.sourceStatus])
	s.SourceClients = int(parseInt(status[n.clients]))
	s.AckedTransactions = parseInt(status[n.yesTx])
	s.UnackedTransactions = parseInt(status[n.noTx])
	s.ReplicaActive = parseBool(status[n.replicaStatus])
	return nil
}

func (i *instance) ExecutedGTID(ctx context.Context) (gtid.Set, error) {
	st, err := i.gtidState(ctx)
	return st.ExecutedGTID, err
}

// gtidState reads the GTID globals: the executed set, binary log and replica positions.
func (i *instance) gtidState(ctx context.Context) (Status, error) {
	var st Status
	rows, err := i.queryRows(ctx, i.d.globalsQuery())
	if err != nil {
		return st, fmt.Errorf("failed to read executed GTID set of %s: %w", i.ep.Address(), err)
	}
	if len(rows) != 1 {
		return st, fmt.Errorf("failed to read executed GTID set of %s: got %d rows", i.ep.Address(), len(rows))
	}
	if err := i.d.parseGlobals(rows[0], &st); err != nil {
		return st, fmt.Errorf("failed to read executed GTID set of %s: %w", i.ep.Address(), err)
	}
	return st, nil
}

func (i *instance) replicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	rows, err := i.queryRows(ctx, i.d.replicaStatusQuery())
	if err != nil {
		return nil, fmt.Errorf("failed to read replica status of %s: %w", i.ep.Address(), err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return parseReplicaStatus(i.d, rows[0])
}

func (i *instance) ConfigureReplica(ctx context.Context, src Source) error {
	if src.CAFile == "" {
		src.CAFile = i.opts.ReplicationCA
	}
	rs, err := i.replicaStatus(ctx)
	if err != nil {
		return err
	}
	st, err := i.gtidState(ctx)
	if err != nil {
		return err
	}
	rejoin := i.d.rejoinStatements(st.ExecutedGTID, st.ReplicaPosition)
	configured := rs != nil && rs.SourceHost == src.Host && rs.SourcePort == src.Port && rs.SourceUser == src.User &&
		(rs.UsingGTID == "Slave_Pos" || rs.UsingGTID == "Auto") && rs.TLS == (src.CAFile != "")
	running := rs != nil && (rs.IOThread != ThreadStopped || rs.SQLThread != ThreadStopped)
	// Configured already: nothing to do, unless replication is stopped with a replica position
	// behind what the instance executed (it would fetch and apply a transaction again).
	if configured && (running || len(rejoin) == 0) {
		return nil
	}
	if err := i.exec(ctx, "stop replication", i.d.stopThreads(BothThreads)); err != nil {
		return err
	}
	if err := i.exec(ctx, "prepare the replica position", rejoin...); err != nil {
		return err
	}
	return i.exec(ctx, "configure the replication source", i.d.changeSource(src))
}

func (i *instance) StartReplication(ctx context.Context, t Thread) error {
	return i.exec(ctx, "start replication", i.d.startThreads(t))
}

func (i *instance) StopReplication(ctx context.Context, t Thread) error {
	return i.exec(ctx, "stop replication", i.d.stopThreads(t))
}

func (i *instance) ApplyRelayLog(ctx context.Context) error {
	rows, err := i.queryRows(ctx, i.d.replicaStatusQuery())
	if err != nil {
		return fmt.Errorf("failed to read replica status of %s: %w", i.ep.Address(), err)
	}
	if len(rows) == 0 {
		return nil // not a replica: nothing received
	}
	c := i.d.columns()
	if err := i.killReceiver(ctx); err != nil {
		return err
	}
	if rows[0][c.sql] == string(ThreadRunning) {
		return i.exec(ctx, "stop the I/O thread", i.d.stopThreads(IOThread))
	}
	file, pos := rows[0]["Relay_Log_File"], parseInt(rows[0]["Relay_Log_Pos"])
	if file == "" || pos <= 0 {
		return fmt.Errorf("failed to apply the relay log on %s: %w", i.ep.Address(), ErrNoRelayLog)
	}
	return i.exec(ctx, "apply the relay log", i.d.applyRelayLog(file, pos)...)
}

// killReceiver kills the replication receiver's connection where the engine needs it for the
// receiver to stop at once (dialect receiverQuery): a failover stops every receiver, often
// while the source is silent, and waits for the slowest.
func (i *instance) killReceiver(ctx context.Context) error {
	q := i.d.receiverQuery()
	if q == "" {
		return nil
	}
	rows, err := i.queryRows(ctx, q)
	if err != nil {
		return fmt.Errorf("failed to find the replication receiver of %s: %w", i.ep.Address(), err)
	}
	for _, r := range rows {
		id := parseInt(r["ID"])
		if id <= 0 {
			continue
		}
		if _, err := i.db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil && !isErrno(err, errnoNoSuchThread) {
			return fmt.Errorf("failed to stop the replication receiver of %s: %w", i.ep.Address(), err)
		}
	}
	// The killed receiver leaves within milliseconds; a STOP SLAVE that races its exit takes
	// the full two seconds again.
	for len(rows) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to stop the replication receiver of %s: %w", i.ep.Address(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if rows, err = i.queryRows(ctx, q); err != nil {
			return fmt.Errorf("failed to find the replication receiver of %s: %w", i.ep.Address(), err)
		}
	}
	return nil
}

func (i *instance) StopReplicaAndReset(ctx context.Context) error {
	return i.exec(ctx, "reset replication", i.d.resetReplica()...)
}

func (i *instance) WaitForGTID(ctx context.Context, set gtid.Set, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	chunk := i.opts.ReadTimeout - time.Second
	if chunk < time.Second {
		chunk = time.Second
	}
	for {
		have, err := i.ExecutedGTID(ctx)
		if err != nil {
			return err
		}
		if have.Contains(set) {
			return nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("failed to reach GTID set on %s: lacks %s: %w", i.ep.Address(), set.Subtract(have), ErrWaitTimeout)
		}
		wait := min(remaining, chunk)
		s := i.d.waitGTID(set, wait.Seconds())
		var result sql.NullInt64
		if err := i.db.QueryRowContext(ctx, s.Query, s.Args...).Scan(&result); err != nil {
			return fmt.Errorf("failed to wait for GTID set on %s: %w", i.ep.Address(), err)
		}
		if !result.Valid {
			return fmt.Errorf("failed to wait for GTID set %s on %s: the server returned NULL", set, i.ep.Address())
		}
		if !i.d.waitTimedOut(result.Int64) {
			// The per-domain position is reached; the loop checks the full set, which fails
			// only if the histories diverged.
			have, err := i.ExecutedGTID(ctx)
			if err != nil {
				return err
			}
			if !have.Contains(set) {
				return fmt.Errorf("failed to reach GTID set on %s: position reached but %s is missing (diverged history)", i.ep.Address(), set.Subtract(have))
			}
			return nil
		}
	}
}

func (i *instance) SetReadOnly(ctx context.Context, readOnly bool) error {
	return i.exec(ctx, "set read-only "+onOff(readOnly), i.d.readOnly(readOnly)...)
}

func (i *instance) ConfigureSemiSync(ctx context.Context, cfg SemiSyncConfig) error {
	var before SemiSyncStatus
	if err := i.semiSyncStatus(ctx, &before); err != nil {
		return fmt.Errorf("failed to configure semi-sync on %s: %w", i.ep.Address(), err)
	}
	if err := i.exec(ctx, "configure semi-sync", i.d.semiSyncStatements(cfg)...); err != nil {
		return err
	}
	if before.ReplicaEnabled == (cfg.Role == RoleReplica) {
		return nil
	}
	// The replica side is read when the I/O thread starts: restart a running one.
	rs, err := i.replicaStatus(ctx)
	if err != nil || rs == nil || rs.IOThread == ThreadStopped {
		return err
	}
	if err := i.StopReplication(ctx, IOThread); err != nil {
		return err
	}
	return i.StartReplication(ctx, IOThread)
}

func (i *instance) CheckAccounts(ctx context.Context, accounts []Account) error {
	var problems []string
	for _, a := range accounts {
		p, err := i.checkAccount(ctx, a)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return &AccountsError{Problems: problems}
	}
	return nil
}

func (i *instance) checkAccount(ctx context.Context, a Account) ([]string, error) {
	if err := validateAccount(a); err != nil {
		return nil, err
	}
	rows, err := i.queryRows(ctx, "SELECT plugin, authentication_string FROM mysql.user WHERE User = ? AND Host = ?", a.User, a.Host)
	if err != nil {
		return nil, fmt.Errorf("failed to read account %s on %s: %w", a.name(), i.ep.Address(), err)
	}
	if len(rows) == 0 {
		return []string{a.name() + " is missing"}, nil
	}
	var problems []string
	if rows[0]["plugin"] == "mysql_native_password" && rows[0]["authentication_string"] != nativePasswordHash(a.Password) {
		problems = append(problems, a.name()+" has another password")
	}
	grantRows, err := i.db.QueryContext(ctx, "SHOW GRANTS FOR "+a.name())
	if err != nil {
		return nil, fmt.Errorf("failed to read grants of %s on %s: %w", a.name(), i.ep.Address(), err)
	}
	defer func() { _ = grantRows.Close() }()
	var grants []string
	for grantRows.Next() {
		var g string
		if err := grantRows.Scan(&g); err != nil {
			return nil, fmt.Errorf("failed to read grants of %s: %w", a.name(), err)
		}
		grants = append(grants, g)
	}
	if err := grantRows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read grants of %s: %w", a.name(), err)
	}
	privs, grantOption := i.d.grants(a.Role)
	for _, p := range privs {
		if !hasPrivilegeOn(grants, p, a.on()) {
			problems = append(problems, a.name()+" lacks "+p)
		}
	}
	if grantOption && !hasGrantOption(grants) {
		problems = append(problems, a.name()+" lacks GRANT OPTION")
	}
	return problems, nil
}

func (i *instance) EnsureAccounts(ctx context.Context, accounts []Account) error {
	for _, a := range accounts {
		problems, err := i.checkAccount(ctx, a)
		if err != nil {
			return err
		}
		if len(problems) == 0 {
			continue
		}
		if err := i.exec(ctx, "repair account "+a.name(), accountStatements(i.d, a)...); err != nil {
			return err
		}
	}
	return nil
}

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func (i *instance) SetGlobal(ctx context.Context, name, value string) error {
	if !variableName.MatchString(name) {
		return fmt.Errorf("failed to set global variable: %q is not a variable name", name)
	}
	_, err := i.db.ExecContext(ctx, "SET GLOBAL "+name+" = ?", globalValue(value))
	switch {
	case err == nil:
		return nil
	case isServerError(err):
		return fmt.Errorf("failed to set %s on %s: %w: %w", name, i.ep.Address(), ErrRefused, err)
	}
	return fmt.Errorf("failed to set %s on %s: %w", name, i.ep.Address(), err)
}

func (i *instance) GlobalVariables(ctx context.Context, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	quoted := make([]string, 0, len(names))
	for _, n := range names {
		if !variableName.MatchString(n) {
			return nil, fmt.Errorf("failed to read global variables: %q is not a variable name", n)
		}
		// The name matched variableName: letters, digits, '_' and one '.', nothing to escape.
		quoted = append(quoted, "'"+strings.ToLower(n)+"'")
	}
	out, err := i.queryPairs(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+strings.Join(quoted, ",")+")")
	if err != nil {
		return nil, fmt.Errorf("failed to read global variables on %s: %w", i.ep.Address(), err)
	}
	lower := make(map[string]string, len(out))
	for k, v := range out {
		lower[strings.ToLower(k)] = v
	}
	return lower, nil
}

func (i *instance) FlushBinaryLogs(ctx context.Context) error {
	return i.exec(ctx, "flush binary logs", i.d.flushBinaryLogs())
}

func (i *instance) ResetGTIDState(ctx context.Context, state gtid.Set) error {
	if !state.IsEmpty() && state.Flavor() != i.d.flavor() {
		return fmt.Errorf("failed to reset GTID state on %s: a %s set for a %s server", i.ep.Address(), state.Flavor(), i.d.engine())
	}
	if err := i.exec(ctx, "reset GTID state", i.d.resetGTIDState(state)...); err != nil {
		return err
	}
	if state.Flavor() != gtid.MariaDB {
		return nil
	}
	// The binary log must start from each domain's newest transaction: a replica asks for it.
	st, err := i.gtidState(ctx)
	if err != nil {
		return err
	}
	if want := state.Position(); !st.BinlogPosition.Equal(want) {
		return fmt.Errorf("failed to reset GTID state on %s: the binary log position is %q, want %q", i.ep.Address(), st.BinlogPosition, want)
	}
	return nil
}
