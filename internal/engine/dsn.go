package engine

import (
	"github.com/go-sql-driver/mysql"
)

// driverConfig is the connection configuration of every pool: TCP (or the Unix socket when
// the endpoint names one) with connect, read and
// write timeouts, client-side interpolation of '?' arguments, no multi-statements.
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
	return c
}

// DSN returns a go-sql-driver/mysql DSN for an endpoint with the timeouts set, for other
// packages that open their own connections.
func DSN(ep Endpoint, o Options) string { return driverConfig(ep, o).FormatDSN() }
