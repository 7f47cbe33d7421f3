package engine

import (
	"testing"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

func TestParseMariaDBGlobals(t *testing.T) {
	var st Status
	err := mariadbDialect{}.parseGlobals(map[string]string{
		"server_id": "1001", "server_uuid": "abc=", "version": "10.11.19-MariaDB", "read_only": "1", "log_bin": "1",
		"gtid_binlog_state": "0-1000-10,0-1001-42", "gtid_binlog_pos": "0-1001-42", "gtid_slave_pos": "0-1000-10",
	}, &st)
	if err != nil {
		t.Fatal(err)
	}
	if st.ServerID != 1001 || !st.ReadOnly || st.SuperReadOnly || !st.LogBin || st.Version != "10.11.19-MariaDB" {
		t.Fatalf("status = %+v", st)
	}
	if st.ExecutedGTID.String() != "0-1000-10,0-1001-42" || st.BinlogPosition.String() != "0-1001-42" || st.ReplicaPosition.String() != "0-1000-10" {
		t.Fatalf("gtids = %s / %s / %s", st.ExecutedGTID, st.BinlogPosition, st.ReplicaPosition)
	}
	// Restored from a backup: nothing in the binlog yet, the position is in gtid_slave_pos.
	st = Status{}
	if err := (mariadbDialect{}).parseGlobals(map[string]string{"gtid_slave_pos": "0-1001-42"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.ExecutedGTID.String() != "0-1001-42" {
		t.Fatalf("executed = %s", st.ExecutedGTID)
	}
	if err := (mariadbDialect{}).parseGlobals(map[string]string{"gtid_binlog_state": "junk"}, &st); err == nil {
		t.Fatal("bad gtid_binlog_state accepted")
	}
}

func TestParseMySQLGlobals(t *testing.T) {
	var st Status
	err := mysqlDialect{}.parseGlobals(map[string]string{
		"server_id": "1002", "server_uuid": "3e11fa47-71ca-11e1-9e33-c80aa9429562", "read_only": "1", "super_read_only": "1",
		"gtid_executed": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n8a94f357-aab4-11df-86ab-c80aa9429562:1-3",
	}, &st)
	if err != nil {
		t.Fatal(err)
	}
	if !st.SuperReadOnly || st.Writable() || st.ExecutedGTID.Flavor() != gtid.MySQL || len(st.ExecutedGTID.Sources()) != 2 {
		t.Fatalf("status = %+v", st)
	}
}

func TestParseReplicaStatus(t *testing.T) {
	mariaRow := map[string]string{
		"Slave_IO_State": "Waiting for master to send event", "Master_Host": "127.0.0.1", "Master_User": "kura-repl",
		"Master_Port": "3306", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Last_SQL_Errno": "1062",
		"Last_SQL_Error": "Duplicate entry '1' for key 'PRIMARY'", "Last_IO_Errno": "0", "Last_IO_Error": "",
		"Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1000-12", "Relay_Log_Space": "4096",
		"Slave_SQL_Running_State": "",
		// Seconds_Behind_Master absent: NULL
	}
	rs, err := parseReplicaStatus(mariadbDialect{}, mariaRow)
	if err != nil {
		t.Fatal(err)
	}
	if rs.SourceHost != "127.0.0.1" || rs.SourcePort != 3306 || rs.IOThread != ThreadRunning || rs.SQLThread != ThreadStopped ||
		rs.LastSQLErrno != 1062 || rs.UsingGTID != "Slave_Pos" || rs.ReceivedGTID.String() != "0-1000-12" ||
		rs.RelayLogSpace != 4096 || rs.SecondsBehindSource != nil || rs.Replicating() {
		t.Fatalf("replica status = %+v", rs)
	}
	mysqlRow := map[string]string{
		"Source_Host": "h", "Source_Port": "3306", "Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes",
		"Auto_Position": "1", "Retrieved_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9", "Seconds_Behind_Source": "3",
	}
	rs, err = parseReplicaStatus(mysqlDialect{}, mysqlRow)
	if err != nil {
		t.Fatal(err)
	}
	if rs.IOThread != ThreadConnecting || rs.UsingGTID != "Auto" || rs.SecondsBehindSource == nil || *rs.SecondsBehindSource != 3 {
		t.Fatalf("replica status = %+v", rs)
	}
	if _, err := parseReplicaStatus(mariadbDialect{}, map[string]string{"Gtid_IO_Pos": "x"}); err == nil {
		t.Fatal("bad Gtid_IO_Pos accepted")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{ReadTimeout: 3 * time.Second}.withDefaults()
	if o.ConnectTimeout != DefaultConnectTimeout || o.ReadTimeout != 3*time.Second || o.StatusTimeout != DefaultConnectTimeout+3*time.Second {
		t.Fatalf("options = %+v", o)
	}
	if _, err := Open("oracle", Endpoint{}, Options{}); err == nil {
		t.Fatal("unknown engine accepted")
	}
	if FlavorOf("mysql") != gtid.MySQL || FlavorOf("mariadb") != gtid.MariaDB {
		t.Fatal("FlavorOf")
	}
}
