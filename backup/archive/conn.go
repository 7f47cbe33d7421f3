package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // mysql_native_password is defined with SHA1
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// The replication connection speaks the client/server protocol directly: a handshake with
// mysql_native_password, a few SET statements, COM_REGISTER_SLAVE and COM_BINLOG_DUMP. No SQL
// driver exposes a connection's raw packets, and the one Go replication library is not
// available here (docs/design.md), so this is the smallest client that streams a binary log.
//
// It never announces semi-synchronous replication (@rpl_semi_sync_slave is never set), so
// the server neither adds the semi-sync header to events nor waits for this connection's
// acknowledgement: the archiver can never count as a replica that holds a transaction.

// Capability flags of the client/server protocol.
const (
	capLongPassword     = 1
	capLongFlag         = 4
	capProtocol41       = 0x200
	capTransactions     = 0x2000
	capSecureConnection = 0x8000
	capPluginAuth       = 0x80000
)

// Commands.
const (
	comQuery         = 0x03
	comBinlogDump    = 0x12
	comRegisterSlave = 0x15
)

const maxPacket = 1<<24 - 1

// ServerError is an error packet of the server.
type ServerError struct {
	Code    uint16
	State   string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server error %d (%s): %s", e.Code, e.State, e.Message)
}

// errBinlogUnavailable is the server's code for "cannot send the binary log from there"
// (purged binlogs, a GTID the server does not have).
const errBinlogUnavailable = 1236

// conn is one protocol connection.
type conn struct {
	nc  net.Conn
	r   *bufio.Reader
	seq byte
	// ServerVersion is what the handshake announced.
	ServerVersion string
	// ConnectionID is the server's id of this connection.
	ConnectionID uint32
	// pending holds events read ahead by peek.
	pending [][]byte
}

// dial connects and authenticates with mysql_native_password.
func dial(ctx context.Context, addr, user, password string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", addr, err)
	}
	c := &conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if err := c.handshake(user, password); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("failed to log in to %s as %s: %w", addr, user, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *conn) Close() error { return c.nc.Close() }

// readPacket reads one logical packet (joining 16 MiB continuation packets).
func (c *conn) readPacket() ([]byte, error) {
	var out []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return nil, err
		}
		n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
		c.seq = hdr[3] + 1
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, out[start:]); err != nil {
			return nil, err
		}
		if n < maxPacket {
			return out, nil
		}
	}
}

func (c *conn) writePacket(payload []byte) error {
	for {
		n := min(len(payload), maxPacket)
		buf := make([]byte, 4+n)
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), c.seq
		copy(buf[4:], payload[:n])
		if _, err := c.nc.Write(buf); err != nil {
			return err
		}
		c.seq++
		payload = payload[n:]
		if n < maxPacket {
			return nil
		}
	}
}

func parseError(p []byte) error {
	if len(p) < 3 || p[0] != 0xff {
		return fmt.Errorf("malformed error packet")
	}
	e := &ServerError{Code: binary.LittleEndian.Uint16(p[1:3])}
	rest := p[3:]
	if len(rest) > 0 && rest[0] == '#' && len(rest) >= 6 {
		e.State, rest = string(rest[1:6]), rest[6:]
	}
	e.Message = string(rest)
	return e
}

func (c *conn) handshake(user, password string) error {
	p, err := c.readPacket()
	if err != nil {
		return err
	}
	if len(p) > 0 && p[0] == 0xff {
		return parseError(p)
	}
	if len(p) < 1 || p[0] != 10 {
		return fmt.Errorf("unsupported handshake version")
	}
	i := bytes.IndexByte(p[1:], 0)
	if i < 0 {
		return fmt.Errorf("malformed handshake")
	}
	c.ServerVersion = string(p[1 : 1+i])
	p = p[2+i:]
	if len(p) < 4+8+1+2+1+2+2+1+10 {
		return fmt.Errorf("short handshake")
	}
	c.ConnectionID = binary.LittleEndian.Uint32(p)
	salt := append([]byte{}, p[4:12]...)
	caps := uint32(binary.LittleEndian.Uint16(p[13:15]))
	caps |= uint32(binary.LittleEndian.Uint16(p[18:20])) << 16
	authLen := int(p[20])
	p = p[31:]
	if caps&capSecureConnection != 0 {
		n := max(13, authLen-8)
		if len(p) < n {
			return fmt.Errorf("short handshake")
		}
		salt = append(salt, bytes.TrimRight(p[:n], "\x00")...)
		p = p[n:]
	}
	plugin := "mysql_native_password"
	if caps&capPluginAuth != 0 {
		if j := bytes.IndexByte(p, 0); j >= 0 {
			plugin = string(p[:j])
		}
	}
	auth := []byte{}
	if plugin == "mysql_native_password" {
		auth = scramble(salt, password)
	}
	flags := uint32(capLongPassword | capLongFlag | capProtocol41 | capTransactions | capSecureConnection | capPluginAuth)
	var resp bytes.Buffer
	_ = binary.Write(&resp, binary.LittleEndian, flags)
	_ = binary.Write(&resp, binary.LittleEndian, uint32(maxPacket))
	resp.WriteByte(45) // utf8mb4_general_ci
	resp.Write(make([]byte, 23))
	resp.WriteString(user)
	resp.WriteByte(0)
	resp.WriteByte(byte(len(auth)))
	resp.Write(auth)
	resp.WriteString("mysql_native_password")
	resp.WriteByte(0)
	if err := c.writePacket(resp.Bytes()); err != nil {
		return err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return err
		}
		if done, err := okOrError(p); done {
			return err
		}
		switch {
		case len(p) > 0 && p[0] == 0xfe:
			// Auth switch request: plugin name, then new salt.
			rest := p[1:]
			j := bytes.IndexByte(rest, 0)
			if j < 0 {
				return fmt.Errorf("malformed authentication switch")
			}
			if name := string(rest[:j]); name != "mysql_native_password" {
				return fmt.Errorf("the account uses the %s authentication plugin; the archiver supports mysql_native_password", name)
			}
			if err := c.writePacket(scramble(bytes.TrimRight(rest[j+1:], "\x00"), password)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected packet during authentication")
		}
	}
}

// okOrError reports whether p is an OK packet (nil) or an error packet (the error).
func okOrError(p []byte) (bool, error) {
	switch {
	case len(p) > 0 && p[0] == 0x00:
		return true, nil
	case len(p) > 0 && p[0] == 0xff:
		return true, parseError(p)
	}
	return false, nil
}

// scramble is mysql_native_password's answer: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
func scramble(salt []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password)) //nolint:gosec // protocol-defined
	h2 := sha1.Sum(h1[:])            //nolint:gosec // protocol-defined
	h := sha1.New()                  //nolint:gosec // protocol-defined
	h.Write(salt[:min(20, len(salt))])
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}

// command sends one command and expects an OK packet.
func (c *conn) command(payload []byte) error {
	c.seq = 0
	if err := c.writePacket(payload); err != nil {
		return err
	}
	p, err := c.readPacket()
	if err != nil {
		return err
	}
	if done, err := okOrError(p); done {
		return err
	}
	return fmt.Errorf("unexpected answer to command 0x%02x (a statement that returns rows?)", payload[0])
}

// exec runs a statement that returns no rows.
func (c *conn) exec(query string) error {
	if err := c.command(append([]byte{comQuery}, query...)); err != nil {
		return fmt.Errorf("%s: %w", strings.SplitN(query, "=", 2)[0], err)
	}
	return nil
}

// registerReplica announces the connection as a replica (SHOW SLAVE HOSTS lists it).
func (c *conn) registerReplica(serverID uint32, host string) error {
	var b bytes.Buffer
	b.WriteByte(comRegisterSlave)
	_ = binary.Write(&b, binary.LittleEndian, serverID)
	b.WriteByte(byte(len(host)))
	b.WriteString(host)
	b.WriteByte(0) // user
	b.WriteByte(0) // password
	_ = binary.Write(&b, binary.LittleEndian, uint16(0))
	_ = binary.Write(&b, binary.LittleEndian, uint32(0)) // rank
	_ = binary.Write(&b, binary.LittleEndian, uint32(0)) // master id
	if err := c.command(b.Bytes()); err != nil {
		return fmt.Errorf("COM_REGISTER_SLAVE: %w", err)
	}
	return nil
}

// startDump sends COM_BINLOG_DUMP; with MariaDB GTID positioning the file is empty and the
// position is 4 (the server starts from @slave_connect_state).
func (c *conn) startDump(serverID uint32) error {
	var b bytes.Buffer
	b.WriteByte(comBinlogDump)
	_ = binary.Write(&b, binary.LittleEndian, uint32(4))
	_ = binary.Write(&b, binary.LittleEndian, uint16(0)) // blocking
	_ = binary.Write(&b, binary.LittleEndian, serverID)
	c.seq = 0
	return c.writePacket(b.Bytes())
}

// errEndOfStream is an EOF packet in the binlog stream (the server ended the dump).
var errEndOfStream = errors.New("the server ended the binary log stream")

// readEvent returns the next binlog event of a dump (without the leading OK byte).
func (c *conn) readEvent(deadline time.Time) ([]byte, error) {
	_ = c.nc.SetReadDeadline(deadline)
	p, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	switch {
	case len(p) == 0:
		return nil, fmt.Errorf("empty packet in the binary log stream")
	case p[0] == 0x00:
		return p[1:], nil
	case p[0] == 0xff:
		return nil, parseError(p)
	case p[0] == 0xfe && len(p) < 9:
		return nil, errEndOfStream
	}
	return nil, fmt.Errorf("unexpected packet 0x%02x in the binary log stream", p[0])
}
