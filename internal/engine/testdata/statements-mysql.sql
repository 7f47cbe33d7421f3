-- status: globals
SELECT @@server_id AS server_id, @@server_uuid AS server_uuid, @@version AS version, @@read_only AS read_only, @@super_read_only AS super_read_only, @@log_bin AS log_bin, @@gtid_executed AS gtid_executed;
-- status: replica
SHOW REPLICA STATUS;
-- kill: list connections
SELECT ID, USER, COMMAND, STATE FROM performance_schema.processlist WHERE ID <> CONNECTION_ID();
-- ConfigureReplica
CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'shop-1.shop-instances.prod.svc.cluster.local', SOURCE_PORT = 3306, SOURCE_USER = 'kura-repl', SOURCE_PASSWORD = 's3\'cr\\et', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_SSL = 0, SOURCE_SSL_VERIFY_SERVER_CERT = 0;
-- ConfigureReplica (TLS verified against the CA)
CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'shop-1.shop-instances.prod.svc.cluster.local', SOURCE_PORT = 3306, SOURCE_USER = 'kura-repl', SOURCE_PASSWORD = 'p', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_SSL = 1, SOURCE_SSL_CA = '/etc/kura/tls/ca.crt', SOURCE_SSL_VERIFY_SERVER_CERT = 1;
-- ConfigureReplica (connect retry 2.5s)
CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.1', SOURCE_PORT = 3307, SOURCE_USER = 'r', SOURCE_PASSWORD = 'p', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 3, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_SSL = 0, SOURCE_SSL_VERIFY_SERVER_CERT = 0;
-- StartReplication
START REPLICA;
START REPLICA IO_THREAD;
START REPLICA SQL_THREAD;
-- StopReplication
STOP REPLICA;
STOP REPLICA IO_THREAD;
STOP REPLICA SQL_THREAD;
-- ApplyRelayLog (SQL thread stopped)
STOP REPLICA IO_THREAD;
START REPLICA SQL_THREAD;
-- StopReplicaAndReset
STOP REPLICA;
RESET REPLICA ALL;
-- WaitForGTID
SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:web:1-3', 9);
-- SetReadOnly(true)
SET GLOBAL super_read_only = ON;
-- SetReadOnly(false)
SET GLOBAL super_read_only = OFF;
SET GLOBAL read_only = OFF;
-- ConfigureSemiSync(primary, 2, default timeout)
SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_source_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_source_wait_for_replica_count = 2;
SET GLOBAL rpl_semi_sync_replica_enabled = OFF;
SET GLOBAL rpl_semi_sync_source_enabled = ON;
-- ConfigureSemiSync(primary, 0)
SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_source_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_source_wait_for_replica_count = 1;
SET GLOBAL rpl_semi_sync_replica_enabled = OFF;
SET GLOBAL rpl_semi_sync_source_enabled = OFF;
-- ConfigureSemiSync(replica)
SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_source_timeout = 4294967295;
SET GLOBAL rpl_semi_sync_source_wait_for_replica_count = 1;
SET GLOBAL rpl_semi_sync_replica_enabled = ON;
SET GLOBAL rpl_semi_sync_source_enabled = OFF;
-- ConfigureSemiSync(none, 30s)
SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC';
SET GLOBAL rpl_semi_sync_source_timeout = 30000;
SET GLOBAL rpl_semi_sync_source_wait_for_replica_count = 1;
SET GLOBAL rpl_semi_sync_replica_enabled = OFF;
SET GLOBAL rpl_semi_sync_source_enabled = OFF;
-- FlushBinaryLogs
FLUSH BINARY LOGS;
-- ResetGTIDState
RESET BINARY LOGS AND GTIDS;
SET GLOBAL gtid_purged = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:web:1-3';
-- CloneFrom
SET GLOBAL clone_valid_donor_list = 'shop-1.shop-instances.prod.svc.cluster.local:3306';
CLONE INSTANCE FROM 'kura-agent'@'shop-1.shop-instances.prod.svc.cluster.local':3306 IDENTIFIED BY 'ag\'ent' REQUIRE NO SSL;
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
GRANT SELECT, RELOAD, PROCESS, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, REPLICATION CLIENT, REPLICATION SLAVE, BACKUP_ADMIN, CLONE_ADMIN ON *.* TO 'kura-agent'@'%';
-- EnsureAccounts: 'root'@'localhost'
CREATE USER IF NOT EXISTS 'root'@'localhost' IDENTIFIED BY 'root\npw';
ALTER USER 'root'@'localhost' IDENTIFIED BY 'root\npw';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
-- EnsureAccounts: 'admin'@'%'
CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY 'ad`min';
ALTER USER 'admin'@'%' IDENTIFIED BY 'ad`min';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, REPLICATION CLIENT ON *.* TO 'admin'@'%' WITH GRANT OPTION;
-- EnsureAccounts: 'app'@'%'
CREATE DATABASE IF NOT EXISTS `shop_db`;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'a\'pp';
ALTER USER 'app'@'%' IDENTIFIED BY 'a\'pp';
GRANT ALL PRIVILEGES ON `shop_db`.* TO 'app'@'%';
