package agent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/kura-db/kura/internal/engine"
)

// ServerTLS is the agent's server TLS configuration: it serves the certificate and key in
// certFile and keyFile (the instance's server certificate, the files mysqld serves) as they
// are at each handshake, so a renewed certificate is served without a restart. While the
// files cannot be read or do not match (a Secret volume being updated), the last good pair
// is served. It fails when the files do not hold a valid pair now.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	f := &certFiles{cert: certFile, key: keyFile}
	if _, err := f.get(nil); err != nil {
		return nil, err
	}
	return f.config(), nil
}

func (f *certFiles) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.get}
}

// certFiles is a key pair read from files, parsed again only when their contents change.
type certFiles struct {
	cert, key string

	mu              sync.Mutex
	certPEM, keyPEM []byte
	pair            *tls.Certificate
}

func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	certPEM, cerr := os.ReadFile(f.cert)
	keyPEM, kerr := os.ReadFile(f.key)
	f.mu.Lock()
	defer f.mu.Unlock()
	err := errors.Join(cerr, kerr)
	if err == nil && (f.pair == nil || !bytes.Equal(certPEM, f.certPEM) || !bytes.Equal(keyPEM, f.keyPEM)) {
		var pair tls.Certificate
		if pair, err = tls.X509KeyPair(certPEM, keyPEM); err == nil {
			f.pair, f.certPEM, f.keyPEM = &pair, certPEM, keyPEM
		}
	}
	if f.pair == nil {
		return nil, fmt.Errorf("failed to load the agent's certificate %s and key %s: %w", f.cert, f.key, err)
	}
	return f.pair, nil
}

// servingTLS is the agent's TLS configuration when its container mounts the server
// certificate (spec.tls.enabled), nil otherwise: the agent then serves plain HTTP. Files that
// do not hold a valid pair yet (a user's broken certificate) are logged, not fatal: the agent
// runs, and its handshakes fail until the files are fixed, never a crash loop.
func servingTLS(certFile, keyFile string, log io.Writer) *tls.Config {
	if engine.ExistingFile(certFile) == "" || engine.ExistingFile(keyFile) == "" {
		return nil
	}
	f := &certFiles{cert: certFile, key: keyFile}
	if _, err := f.get(nil); err != nil {
		fmt.Fprintf(log, "kura agent: %v; TLS handshakes fail until the files hold a valid certificate and key\n", err)
	}
	return f.config()
}

// readCA returns the cluster's CA certificate in caFile, nil when the Pod does not mount it
// (TLS disabled).
func readCA(caFile string) ([]byte, error) {
	b, err := os.ReadFile(caFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the CA: %w", err)
	}
	return b, nil
}
