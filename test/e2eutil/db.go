package e2eutil

import (
	"crypto/tls"
	"database/sql"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// Timeouts of a connection to an instance: connect, and each read or write on the wire.
type Timeouts struct {
	Dial, IO time.Duration
}

// DefaultTimeouts suit a test client that should notice a dead server within seconds.
var DefaultTimeouts = Timeouts{Dial: 2 * time.Second, IO: 5 * time.Second}

// OpenDB opens a pool of one connection to host:3306 (an instance's Pod IP or a Service's
// ClusterIP) as user.
func OpenDB(host, user, password string, to Timeouts) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", host+":3306"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = to.Dial, to.IO, to.IO
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		panic(err) // FormatDSN output always parses
	}
	db.SetMaxOpenConns(1)
	return db
}

// WaitFor polls cond until it returns nil, failing with its last error at the deadline.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Await(timeout, 250*time.Millisecond, cond); err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// Await polls cond every interval until it returns nil or timeout passes; then it returns
// cond's last error.
func Await(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// OpenTLSDB is OpenDB over TLS: the server's certificate must be signed by the CA in caPEM
// and name serverName (the host dialled is usually an IP the certificate does not name).
func OpenTLSDB(host, serverName, user, password string, caPEM []byte, to Timeouts) (*sql.DB, error) {
	return openTLS(host, serverName, user, password, caPEM, to, nil)
}

// ServedCertificate opens one verified TLS session with the server and returns the serial
// number of the certificate it presented.
func ServedCertificate(host, serverName, user, password string, caPEM []byte) (*big.Int, error) {
	var mu sync.Mutex
	var serial *big.Int
	db, err := openTLS(host, serverName, user, password, caPEM, DefaultTimeouts, func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		serial = cs.PeerCertificates[0].SerialNumber
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	if err := db.Ping(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return serial, nil
}

// ServedAgentCertificate returns the serial number of the certificate the agent at host
// serves on its port, verified against caPEM for serverName.
func ServedAgentCertificate(host, serverName string, caPEM []byte) (*big.Int, error) {
	cfg, err := engine.ClientTLS(caPEM, serverName)
	if err != nil {
		return nil, err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: DefaultTimeouts.Dial}, "tcp", net.JoinHostPort(host, strconv.Itoa(contract.AgentPort)), cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func openTLS(host, serverName, user, password string, caPEM []byte, to Timeouts, verify func(tls.ConnectionState) error) (*sql.DB, error) {
	tlsConfig, err := engine.ClientTLS(caPEM, serverName)
	if err != nil {
		return nil, err
	}
	tlsConfig.VerifyConnection = verify
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", host+":3306"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = to.Dial, to.IO, to.IO
	cfg.TLS = tlsConfig
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}
