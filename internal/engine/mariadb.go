package engine

import (
	"fmt"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/gtid"
)

// mariadbDialect speaks MariaDB 10.11 and 11.4.
type mariadbDialect struct{}

func (mariadbDialect) engine() kurav1alpha1.Engine { return kurav1alpha1.EngineMariaDB }
func (mariadbDialect) flavor() gtid.Flavor         { return gtid.MariaDB }

func (mariadbDialect) globalsQuery() string {
	return "SELECT @@server_id AS server_id, @@server_uid AS server_uuid, @@version AS version, " +
		"@@read_only AS read_only, @@log_bin AS log_bin, @@gtid_binlog_state AS gtid_binlog_state, " +
		"@@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_slave_pos AS gtid_slave_pos"
}

// parseGlobals reads the executed set as gtid_binlog_state (the last seq_no of every
// (domain, server_id) in the binary log) united with gtid_slave_pos (which covers an instance
// restored from a backup, whose binary log does not hold what it restored).
func (mariadbDialect) parseGlobals(row map[string]string, st *Status) error {
	st.ServerID = uint32(parseInt(row["server_id"]))
	st.ServerUUID = row["server_uuid"]
	st.Version = row["version"]
	st.ReadOnly = parseBool(row["read_only"])
	st.LogBin = parseBool(row["log_bin"])
	state, err := gtid.Parse(gtid.MariaDB, row["gtid_binlog_state"])
	if err != nil {
		return fmt.Errorf("failed to read gtid_binlog_state: %w", err)
	}
	if st.BinlogPosition, err = gtid.Parse(gtid.MariaDB, row["gtid_binlog_pos"]); err != nil {
		return fmt.Errorf("failed to read gtid_binlog_pos: %w", err)
	}
	if st.ReplicaPosition, err = gtid.Parse(gtid.MariaDB, row["gtid_slave_pos"]); err != nil {
		return fmt.Errorf("failed to read gtid_slave_pos: %w", err)
	}
	st.ExecutedGTID = state.Union(st.ReplicaPosition)
	return nil
}

func (mariadbDialect) replicaStatusQuery() string { return "SHOW SLAVE STATUS" }

func (mariadbDialect) columns() replicaColumns {
	return replicaColumns{
		host: "Master_Host", port: "Master_Port", user: "Master_User",
		io: "Slave_IO_Running", sql: "Slave_SQL_Running",
		ioState: "Slave_IO_State", sqlState: "Slave_SQL_Running_State",
		seconds: "Seconds_Behind_Master", usingGTID: "Using_Gtid", received: "Gtid_IO_Pos",
		sslAllowed: "Master_SSL_Allowed", sslVerify: "Master_SSL_Verify_Server_Cert",
	}
}

func (mariadbDialect) parseUsingGTID(row map[string]string) string { return row["Using_Gtid"] }

func (mariadbDialect) semiSync() semiSyncNames {
	return semiSyncNames{
		sourceEnabled: "rpl_semi_sync_master_enabled", timeout: "rpl_semi_sync_master_timeout",
		waitPoint: "rpl_semi_sync_master_wait_point", replicaEnabled: "rpl_semi_sync_slave_enabled",
		sourceStatus: "Rpl_semi_sync_master_status", clients: "Rpl_semi_sync_master_clients",
		yesTx: "Rpl_semi_sync_master_yes_tx", noTx: "Rpl_semi_sync_master_no_tx",
		replicaStatus: "Rpl_semi_sync_slave_status",
	}
}

func (mariadbDialect) processlistQuery() string {
	return "SELECT ID, USER, COMMAND, STATE FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
}

// receiverQuery: a receiver blocked reading from a source that went silent (frozen, cut off)
// ignores STOP SLAVE's first wake-up; the server tries again two seconds later, so the
// statement takes 2 s (measured on 10.11, TestMariaDBReceiverOfASilentSourceStopsAtOnce).
// Killing the receiver's connection ends the read at once.
func (mariadbDialect) receiverQuery() string {
	return "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'"
}

// changeSource uses MASTER_USE_GTID=slave_pos. Before it runs, the instance copies
// gtid_current_pos into gtid_slave_pos (see instance.ConfigureReplica), so a former primary
// resumes after its own last transaction rather than at a stale replica position. With a CA
// the replica connects with TLS and verifies the source's certificate and host name
// (MASTER_HOST); without, TLS is turned off explicitly (11.x would otherwise try it).
func (mariadbDialect) changeSource(src Source) stmt {
	s := stmt{
		Query: "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, " +
			"MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = ?",
		Args: []any{src.Host, src.Port, src.User, src.Password, connectRetrySeconds(src.ConnectRetry)},
	}
	return withSourceTLS(s, "MASTER", src.CAFile)
}

func (mariadbDialect) startThreads(t Thread) stmt {
	return stmt{Query: "START SLAVE" + threadClause(t)}
}
func (mariadbDialect) stopThreads(t Thread) stmt { return stmt{Query: "STOP SLAVE" + threadClause(t)} }

func (mariadbDialect) resetReplica() []stmt {
	return []stmt{{Query: "STOP SLAVE"}, {Query: "RESET SLAVE ALL"}}
}

// waitGTID waits on the per-domain position (MASTER_GTID_WAIT compares seq_no per domain
// with gtid_slave_pos); the instance then checks the full set.
func (mariadbDialect) waitGTID(set gtid.Set, seconds float64) stmt {
	return stmt{Query: "SELECT MASTER_GTID_WAIT(?, ?)", Args: []any{set.Position().String(), seconds}}
}

// MASTER_GTID_WAIT returns 0 when reached and -1 on timeout.
func (mariadbDialect) waitTimedOut(result int64) bool { return result == -1 }

// readOnly: MariaDB has no super_read_only; read_only blocks every account without the
// READ ONLY ADMIN privilege (SUPER no longer implies it since 10.11).
func (mariadbDialect) readOnly(on bool) []stmt {
	return []stmt{{Query: "SET GLOBAL read_only = " + onOff(on)}}
}

// semiSyncStatements: MariaDB waits for one acknowledgement; a WaitCount of 0 turns the source
// side off. The replica side is read when the I/O thread starts.
func (mariadbDialect) semiSyncStatements(cfg SemiSyncConfig) []stmt {
	source := cfg.Role == RolePrimary && cfg.WaitCount > 0
	replica := cfg.Role == RoleReplica
	return []stmt{
		{Query: "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'"},
		{Query: fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", semiSyncTimeoutMillis(cfg.Timeout))},
		{Query: "SET GLOBAL rpl_semi_sync_slave_enabled = " + onOff(replica)},
		{Query: "SET GLOBAL rpl_semi_sync_master_enabled = " + onOff(source)},
	}
}

func (mariadbDialect) flushBinaryLogs() stmt { return stmt{Query: "FLUSH BINARY LOGS"} }

// resetGTIDState empties the binary log, then records the full per-(domain, server_id) state
// in it (in the order that makes each domain's position its last entry) and the per-domain
// position as the replica position.
func (mariadbDialect) resetGTIDState(state gtid.Set) []stmt {
	return []stmt{
		{Query: "RESET MASTER"},
		{Query: "SET GLOBAL gtid_binlog_state = ?", Args: []any{state.BinlogState()}},
		{Query: "SET GLOBAL gtid_slave_pos = ?", Args: []any{state.Position().String()}},
	}
}

func (mariadbDialect) grants(role AccountRole) ([]string, bool) {
	switch role {
	case RoleOperator, RoleRoot:
		return []string{"ALL PRIVILEGES"}, true
	case RoleAdmin:
		// Not READ ONLY ADMIN or SUPER (they bypass read_only, so a fenced primary would keep
		// taking this account's writes), nor BINLOG ADMIN (SET sql_log_bin, PURGE), RELOAD
		// (RESET MASTER), SHUTDOWN, the replication admin privileges, FILE or SET USER.
		return []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "PROCESS", "REFERENCES",
			"INDEX", "ALTER", "SHOW DATABASES", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE",
			"CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER",
			"DELETE HISTORY", "BINLOG MONITOR", "SLAVE MONITOR"}, true
	case RoleApp:
		return []string{"ALL PRIVILEGES"}, false
	case RoleReplication:
		return []string{"REPLICATION SLAVE"}, false
	case RoleAgent:
		return []string{"SELECT", "RELOAD", "PROCESS", "LOCK TABLES", "SHOW VIEW", "EVENT", "TRIGGER",
			"BINLOG MONITOR", "REPLICATION SLAVE", "SLAVE MONITOR"}, false
	}
	return nil, false
}

func (mariadbDialect) disableBinlog() stmt { return stmt{Query: "SET SESSION sql_log_bin = 0"} }

// rejoinStatements make gtid_slave_pos the position of everything the instance executed (the
// last GTID of each domain in its binary log state or replica position). Two cases leave
// gtid_slave_pos behind: an instance that was a primary (its own transactions are only in the
// binary log), and a replica killed after it applied and logged a DDL statement but before it
// recorded the GTID in mysql.gtid_slave_pos (DDL is not in the same transaction as that
// record). Replicating from the stale position would apply the transaction again, which strict
// mode refuses (error 1950, out-of-order GTID). Not gtid_current_pos: it takes from the binary
// log only the server's own transactions, which misses the second case.
func (mariadbDialect) rejoinStatements(executed, replicaPos gtid.Set) []stmt {
	pos := executed.Position()
	if replicaPos.Equal(pos) {
		return nil
	}
	return []stmt{{Query: "SET GLOBAL gtid_slave_pos = ?", Args: []any{pos.String()}}}
}

// applyRelayLog: with MASTER_USE_GTID=slave_pos, starting replication with both threads
// stopped deletes the relay log and fetches again from gtid_slave_pos (measured on 10.11).
// Switching to file positions with an explicit relay log position keeps the relay log; the
// GTID events in it still advance gtid_slave_pos. The next ConfigureReplica switches back.
func (mariadbDialect) applyRelayLog(file string, pos int64) []stmt {
	return []stmt{
		{Query: "STOP SLAVE IO_THREAD"},
		{Query: "STOP SLAVE SQL_THREAD"},
		{Query: "CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = ?, RELAY_LOG_POS = ?", Args: []any{file, pos}},
		{Query: "START SLAVE SQL_THREAD"},
	}
}

// cloneFrom: MariaDB has no CLONE plugin; it clones by streaming mariadb-backup (clone.go).
func (mariadbDialect) cloneFrom(Endpoint) []stmt { return nil }
