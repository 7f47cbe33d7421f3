package engine

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"

	"github.com/go-sql-driver/mysql"
)

// driverConfig is the connection configuration of every pool: TCP (or the Unix socket when
// the endpoint names one), with TLS when the endpoint has a TLS configuration, with connect,
// read and write timeouts, client-side interpolation of '?' arguments, no multi-statements.
func driverConfig(ep Endpoint, o Options) *mysql.Config {
	o = o.withDefaults()
	c := mysql.NewConfig()
	c.User = ep.User
	c.Passwd = ep.Password
	c.Net = "tcp"
	c.Addr = ep.Address()
	if ep.Socket != "" {
		c.Net, c.Addr = "unix", ep.Socket
	}
	c.Timeout = o.ConnectTimeout
	c.ReadTimeout = o.ReadTimeout
	c.WriteTimeout = o.WriteTimeout
	c.InterpolateParams = true
	c.AllowNativePasswords = true
	c.Params = map[string]string{"wait_timeout": "3600"}
	if ep.TLS != nil && ep.Socket == "" {
		c.TLS = ep.TLS
	}
	return c
}

// DSN returns a go-sql-driver/mysql DSN for an endpoint with the timeouts set, for other
// packages that open their own connections. It cannot carry a TLS configuration: use
// Connector for an endpoint with TLS.
func DSN(ep Endpoint, o Options) string { return driverConfig(ep, o).FormatDSN() }

// Connector returns a database/sql connector for an endpoint (TLS included), for other
// packages that open their own connections: sql.OpenDB(engine.Connector(ep, o)).
func Connector(ep Endpoint, o Options) (driver.Connector, error) {
	return mysql.NewConnector(driverConfig(ep, o))
}

// LocalTLS is the client TLS configuration of a process inside an instance Pod: it trusts the
// CA in caFile and verifies the server's certificate for the address dialled (127.0.0.1,
// which the certificate names). It returns nil when caFile does not exist: the instance does
// not serve TLS (spec.tls.enabled is false) and connections stay in clear text.
func LocalTLS(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the CA: %w", err)
	}
	cfg, err := ClientTLS(pem, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caFile, err)
	}
	return cfg, nil
}

// ClientTLS is a client TLS configuration that trusts the CA certificate(s) in caPEM and
// verifies the server's certificate for serverName (empty: the address dialled).
func ClientTLS(caPEM []byte, serverName string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the CA is not a PEM certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

// ExistingFile returns path when the file exists, else "": a CA file mounted only when the
// cluster serves TLS.
func ExistingFile(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
