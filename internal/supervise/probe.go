package supervise

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// SQLProbe asks the local instance over loopback whether it may stop: it may when it is
// read-only (a replica, or a primary the operator has already switched away from), or when
// no replica is connected to take over.
//
// tlsConfig, when not nil, makes the connection use TLS (the instance serves it).
func SQLProbe(engine kurav1alpha1.Engine, port int, user, password string, tlsConfig *tls.Config) Probe {
	cfg := loopback(port, user, password, tlsConfig, 2*time.Second)
	replicas := "SHOW SLAVE HOSTS"
	if engine == kurav1alpha1.EngineMySQL {
		replicas = "SHOW REPLICAS"
	}
	return func(ctx context.Context) (bool, string, error) {
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return false, "", err
		}
		db := sql.OpenDB(conn)
		defer func() { _ = db.Close() }()
		var readOnly bool
		if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&readOnly); err != nil {
			return false, "", err
		}
		if readOnly {
			return true, "the instance is read-only", nil
		}
		rows, err := db.QueryContext(ctx, replicas)
		if err != nil {
			return false, "", err
		}
		n := 0
		for rows.Next() {
			n++
		}
		_ = rows.Close()
		if n == 0 {
			return true, "the instance is the primary but no replica is connected to take over", nil
		}
		return false, fmt.Sprintf("the writable primary, with %d replica(s): waiting for the operator to switch over", n), nil
	}
}

// loopback is the connection configuration of the local server over 127.0.0.1, with TLS when
// tlsConfig is not nil.
func loopback(port int, user, password string, tlsConfig *tls.Config, readTimeout time.Duration) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Timeout, cfg.ReadTimeout = time.Second, readTimeout
	cfg.TLS = tlsConfig
	return cfg
}
