-- status: globals
SELECT @@server_id AS server_id, @@server_uid AS server_uuid, @@version AS version, @@read_only AS read_only, @@log_bin AS log_bin, @@gtid_binlog_state AS gtid_binlog_state, @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_slave_pos AS gtid_slave_pos;
-- status: replica
SHOW SLAVE STATUS;
-- kill: list connections
SELECT ID, USER, COMMAND, STATE FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID();
-- ApplyRelayLog: the receiver's connection, killed first
SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO';
-- ConfigureReplica
SET GLOBAL gtid_slave_pos = '0-1002-50,1-1001-7';
CHANGE MASTER TO MASTER_HOST = 'shop-1.shop-instances.prod.svc.cluster.local', MASTER_PORT = 3306, MASTER_USER = 'kura-repl', MASTER_PASSWORD = 's3\'cr\\et', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_SSL = 0, MASTER_SSL_VERIFY_SERVER_CERT = 0;
-- ConfigureReplica (TLS verified against the CA)
CHANGE MASTER TO MASTER_HOST = 'shop-1.shop-instances.prod.svc.cluster.local', MASTER_PORT = 3306, MASTER_USER = 'kura-repl', MASTER_PASSWORD = 'p', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_SSL = 1, MASTER_SSL_CA = '/etc/kura/tls/ca.crt', MASTER_SSL_VERIFY_SERVER_CERT = 1;
-- ConfigureReplica (connect retry 2.5s)
CHANGE MASTER TO MASTER_HOST = '10.0.0.1', MASTER_PORT = 3307, MASTER_USER = 'r', MASTER_PASSWORD = 'p', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 3, MASTER_SSL = 0, MASTER_SSL_VERIFY_SERVER_CERT = 0;
-- StartReplication
START SLAVE;
START SLAVE IO_THREAD;
START SLAVE SQL_THREAD;
-- StopReplication
STOP SLAVE;
STOP SLAVE IO_THREAD;
STOP SLAVE SQL_THREAD;
-- ApplyRelayLog (SQL thread stopped)
STOP SLAVE IO_THREAD;
STOP SLAVE SQL_THREAD;
CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = 'relay-bin.000002', RELAY_LOG_POS = 910;
START SLAVE SQL_THREAD;
-- StopReplicaAndReset
STOP SLAVE;
RESET SLAVE ALL;
-- WaitForGTID
SELECT MASTER_GTID_WAIT('0-1002-50,1-1001-7', 9);
-- SetReadOnly(true)
SET GLOBAL read_only = ON;
-- SetReadOnly(false)
SET GLOBAL read_only = OFF;
-- ConfigureSemiSync(primary, 2, default timeout)
SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_master_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_slave_enabled = OFF;
SET GLOBAL rpl_semi_sync_master_enabled = ON;
-- ConfigureSemiSync(primary, 0)
SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_master_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_slave_enabled = OFF;
SET GLOBAL rpl_semi_sync_master_enabled = OFF;
-- ConfigureSemiSync(replica)
SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_master_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_slave_enabled = ON;
SET GLOBAL rpl_semi_sync_master_enabled = OFF;
-- ConfigureSemiSync(none, 30s)
SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_master_timeout = 30000;
SET GLOBAL rpl_semi_sync_slave_enabled = OFF;
SET GLOBAL rpl_semi_sync_master_enabled = OFF;
-- FlushBinaryLogs
FLUSH BINARY LOGS;
-- ResetGTIDState
RESET MASTER;
SET GLOBAL gtid_binlog_state = '0-1001-42,0-1002-50,1-1001-7';
SET GLOBAL gtid_slave_pos = '0-1002-50,1-1001-7';
-- CloneFrom
-- EnsureAccounts: 'kura-operator'@'%'
CREATE USER IF NOT EXISTS 'kura-operator'@'%' IDENTIFIED BY 'op\'er';
ALTER USER 'kura-operator'@'%' IDENTIFIED BY 'op\'er';
GRANT ALL PRIVILEGES ON *.* TO 'kura-operator'@'%' WITH GRANT OPTION;
-- EnsureAccounts: 'kura-repl'@'%'
CREATE USER IF NOT EXISTS 'kura-repl'@'%' IDENTIFIED BY 're\\pl';
ALTER USER 'kura-repl'@'%' IDENTIFIED BY 're\\pl';
GRANT REPLICATION SLAVE ON *.* TO 'kura-repl'@'%';
-- EnsureAccounts: 'kura-agent'@'%'
CREATE USER IF NOT EXISTS 'kura-agent'@'%' IDENTIFIED BY 'agent\"pw';
ALTER USER 'kura-agent'@'%' IDENTIFIED BY 'agent\"pw';
GRANT SELECT, RELOAD, PROCESS, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, BINLOG MONITOR, REPLICATION SLAVE, SLAVE MONITOR ON *.* TO 'kura-agent'@'%';
-- EnsureAccounts: 'root'@'localhost'
CREATE USER IF NOT EXISTS 'root'@'localhost' IDENTIFIED BY 'root\npw';
ALTER USER 'root'@'localhost' IDENTIFIED BY 'root\npw';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
-- EnsureAccounts: 'admin'@'%'
CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY 'ad`min';
ALTER USER 'admin'@'%' IDENTIFIED BY 'ad`min';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, DELETE HISTORY, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'admin'@'%' WITH GRANT OPTION;
-- EnsureAccounts: 'app'@'%'
CREATE DATABASE IF NOT EXISTS `shop_db`;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'a\'pp';
ALTER USER 'app'@'%' IDENTIFIED BY 'a\'pp';
GRANT ALL PRIVILEGES ON `shop_db`.* TO 'app'@'%';
