package engine

import (
	"fmt"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/gtid"
)

// mysqlDialect speaks MySQL 8.4 LTS. Experimental: written against the documented syntax and
// unit-tested, never run against a real MySQL server here.
type mysqlDialect struct{}

func (mysqlDialect) engine() kurav1alpha1.Engine { return kurav1alpha1.EngineMySQL }
func (mysqlDialect) flavor() gtid.Flavor         { return gtid.MySQL }

func (mysqlDialect) globalsQuery() string {
	return "SELECT @@server_id AS server_id, @@server_uuid AS server_uuid, @@version AS version, " +
		"@@read_only AS read_only, @@super_read_only AS super_read_only, @@log_bin AS log_bin, " +
		"@@gtid_executed AS gtid_executed"
}

func (mysqlDialect) parseGlobals(row map[string]string, st *Status) error {
	st.ServerID = uint32(parseInt(row["server_id"]))
	st.ServerUUID = row["server_uuid"]
	st.Version = row["version"]
	st.ReadOnly = parseBool(row["read_only"])
	st.SuperReadOnly = parseBool(row["super_read_only"])
	st.LogBin = parseBool(row["log_bin"])
	executed, err := gtid.Parse(gtid.MySQL, row["gtid_executed"])
	if err != nil {
		return fmt.Errorf("failed to read gtid_executed: %w", err)
	}
	st.ExecutedGTID, st.BinlogPosition, st.ReplicaPosition = executed, executed, executed
	return nil
}

func (mysqlDialect) replicaStatusQuery() string { return "SHOW REPLICA STATUS" }

func (mysqlDialect) columns() replicaColumns {
	return replicaColumns{
		host: "Source_Host", port: "Source_Port", user: "Source_User",
		io: "Replica_IO_Running", sql: "Replica_SQL_Running",
		ioState: "Replica_IO_State", sqlState: "Replica_SQL_Running_State",
		seconds: "Seconds_Behind_Source", usingGTID: "Auto_Position", received: "Retrieved_Gtid_Set",
		sslAllowed: "Source_SSL_Allowed", sslVerify: "Source_SSL_Verify_Server_Cert",
	}
}

func (mysqlDialect) parseUsingGTID(row map[string]string) string {
	if parseBool(row["Auto_Position"]) {
		return "Auto"
	}
	return "No"
}

func (mysqlDialect) semiSync() semiSyncNames {
	return semiSyncNames{
		sourceEnabled: "rpl_semi_sync_source_enabled", timeout: "rpl_semi_sync_source_timeout",
		waitPoint: "rpl_semi_sync_source_wait_point", waitCount: "rpl_semi_sync_source_wait_for_replica_count",
		replicaEnabled: "rpl_semi_sync_replica_enabled",
		sourceStatus:   "Rpl_semi_sync_source_status", clients: "Rpl_semi_sync_source_clients",
		yesTx: "Rpl_semi_sync_source_yes_tx", noTx: "Rpl_semi_sync_source_no_tx",
		replicaStatus: "Rpl_semi_sync_replica_status",
	}
}

func (mysqlDialect) processlistQuery() string {
	return "SELECT ID, USER, COMMAND, STATE FROM performance_schema.processlist WHERE ID <> CONNECTION_ID()"
}

// receiverQuery: not measured on MySQL; STOP REPLICA IO_THREAD is used alone.
func (mysqlDialect) receiverQuery() string { return "" }

// changeSource uses SOURCE_AUTO_POSITION=1: the source sends what gtid_executed lacks.
// GET_SOURCE_PUBLIC_KEY lets caching_sha2_password work without TLS. With a CA the replica
// connects with TLS and verifies the source's certificate and host name (SOURCE_HOST).
func (mysqlDialect) changeSource(src Source) stmt {
	s := stmt{
		Query: "CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, " +
			"SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = ?, GET_SOURCE_PUBLIC_KEY = 1",
		Args: []any{src.Host, src.Port, src.User, src.Password, connectRetrySeconds(src.ConnectRetry)},
	}
	return withSourceTLS(s, "SOURCE", src.CAFile)
}

func (mysqlDialect) startThreads(t Thread) stmt {
	return stmt{Query: "START REPLICA" + threadClause(t)}
}
func (mysqlDialect) stopThreads(t Thread) stmt { return stmt{Query: "STOP REPLICA" + threadClause(t)} }

func (mysqlDialect) resetReplica() []stmt {
	return []stmt{{Query: "STOP REPLICA"}, {Query: "RESET REPLICA ALL"}}
}

func (mysqlDialect) waitGTID(set gtid.Set, seconds float64) stmt {
	return stmt{Query: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)", Args: []any{set.String(), seconds}}
}

// WAIT_FOR_EXECUTED_GTID_SET returns 0 when reached and 1 on timeout.
func (mysqlDialect) waitTimedOut(result int64) bool { return result == 1 }

// readOnly: super_read_only=ON implies read_only=ON; turning writes on needs both off.
func (mysqlDialect) readOnly(on bool) []stmt {
	if on {
		return []stmt{{Query: "SET GLOBAL super_read_only = ON"}}
	}
	return []stmt{{Query: "SET GLOBAL super_read_only = OFF"}, {Query: "SET GLOBAL read_only = OFF"}}
}

func (mysqlDialect) semiSyncStatements(cfg SemiSyncConfig) []stmt {
	source := cfg.Role == RolePrimary && cfg.WaitCount > 0
	count := cfg.WaitCount
	if count < 1 {
		count = 1
	}
	return []stmt{
		{Query: "SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC'"},
		{Query: fmt.Sprintf("SET GLOBAL rpl_semi_sync_source_timeout = %d", semiSyncTimeoutMillis(cfg.Timeout))},
		{Query: fmt.Sprintf("SET GLOBAL rpl_semi_sync_source_wait_for_replica_count = %d", count)},
		{Query: "SET GLOBAL rpl_semi_sync_replica_enabled = " + onOff(cfg.Role == RoleReplica)},
		{Query: "SET GLOBAL rpl_semi_sync_source_enabled = " + onOff(source)},
	}
}

func (mysqlDialect) flushBinaryLogs() stmt { return stmt{Query: "FLUSH BINARY LOGS"} }

func (mysqlDialect) resetGTIDState(state gtid.Set) []stmt {
	return []stmt{
		{Query: "RESET BINARY LOGS AND GTIDS"},
		{Query: "SET GLOBAL gtid_purged = ?", Args: []any{state.String()}},
	}
}

func (mysqlDialect) grants(role AccountRole) ([]string, bool) {
	switch role {
	case RoleOperator, RoleRoot:
		return []string{"ALL PRIVILEGES"}, true
	case RoleAdmin:
		// Static privileges without SUPER (super_read_only still stops it, but SUPER could turn
		// it off), RELOAD, SHUTDOWN, FILE and the replication privileges; no dynamic privilege
		// (CONNECTION_ADMIN, SYSTEM_VARIABLES_ADMIN, BINLOG_ADMIN, ...).
		return []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "PROCESS", "REFERENCES",
			"INDEX", "ALTER", "SHOW DATABASES", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE",
			"CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER",
			"REPLICATION CLIENT"}, true
	case RoleApp:
		return []string{"ALL PRIVILEGES"}, false
	case RoleReplication:
		return []string{"REPLICATION SLAVE"}, false
	case RoleAgent:
		return []string{"SELECT", "RELOAD", "PROCESS", "LOCK TABLES", "SHOW VIEW", "EVENT", "TRIGGER",
			"REPLICATION CLIENT", "REPLICATION SLAVE", "BACKUP_ADMIN", "CLONE_ADMIN"}, false
	}
	return nil, false
}

func (mysqlDialect) disableBinlog() stmt { return stmt{Query: "SET SESSION sql_log_bin = 0"} }

// rejoinStatements: auto-positioning sends what gtid_executed lacks; nothing to prepare.
func (mysqlDialect) rejoinStatements(_, _ gtid.Set) []stmt { return nil }

// applyRelayLog: MySQL keeps the relay log when only the SQL thread starts
// (relay_log_recovery=OFF), so the position is not needed.
func (mysqlDialect) applyRelayLog(string, int64) []stmt {
	return []stmt{{Query: "STOP REPLICA IO_THREAD"}, {Query: "START REPLICA SQL_THREAD"}}
}

// cloneFrom (experimental, never run against a server here) follows the MySQL 8.4 reference
// of the CLONE plugin: the donor must be listed in clone_valid_donor_list, and CLONE INSTANCE
// replaces this server's data with the donor's, including gtid_executed and gtid_purged, so
// no GTID state is set afterwards. The donor account needs BACKUP_ADMIN, this server's
// account CLONE_ADMIN; both servers need the plugin loaded.
func (mysqlDialect) cloneFrom(donor Endpoint) []stmt {
	return []stmt{
		{Query: "SET GLOBAL clone_valid_donor_list = ?", Args: []any{donor.Address()}},
		{Query: "CLONE INSTANCE FROM ?@?:" + fmt.Sprint(donor.Port) + " IDENTIFIED BY ? REQUIRE NO SSL",
			Args: []any{donor.User, donor.Host, donor.Password}},
	}
}
