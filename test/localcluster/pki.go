package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// pki is the set of keys and certificates the control plane needs, all generated here.
type pki struct {
	dir string
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

// CAFile is the cluster CA certificate (it signs the serving and client certificates).
func (c *Config) CAFile() string { return c.Path("pki", "ca.crt") }

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("failed to marshal key: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

type signed struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

func issue(tmpl *x509.Certificate, parent *x509.Certificate, parentKey crypto.Signer) (*signed, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("failed to generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("failed to generate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("failed to parse certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal key: %w", err)
	}
	return &signed{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func (s *signed) write(certPath, keyPath string) error {
	if err := os.WriteFile(certPath, s.certPEM, 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", certPath, err)
	}
	if err := os.WriteFile(keyPath, s.keyPEM, 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", keyPath, err)
	}
	return nil
}

// writePKI generates the CA, the kube-apiserver serving certificate, an admin client
// certificate, the service-account signing key pair, and the admin kubeconfig.
func (c *Config) writePKI() error {
	p := pki{dir: c.Path("pki")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("failed to create pki dir: %w", err)
	}
	ca, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "kura-local-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}, nil, nil)
	if err != nil {
		return err
	}
	if err := ca.write(p.path("ca.crt"), p.path("ca.key")); err != nil {
		return err
	}
	serving, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + ClusterDomain},
		IPAddresses: []net.IP{net.ParseIP(HostIP), net.ParseIP(KubernetesServiceIP), net.ParseIP("127.0.0.1")},
	}, ca.cert, ca.key)
	if err != nil {
		return err
	}
	if err := serving.write(p.path("apiserver.crt"), p.path("apiserver.key")); err != nil {
		return err
	}
	admin, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kura-local-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.cert, ca.key)
	if err != nil {
		return err
	}
	if err := admin.write(p.path("admin.crt"), p.path("admin.key")); err != nil {
		return err
	}
	saKey, err := newKey()
	if err != nil {
		return fmt.Errorf("failed to generate service-account key: %w", err)
	}
	if err := writeKey(p.path("sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return fmt.Errorf("failed to marshal service-account public key: %w", err)
	}
	if err := writePEM(p.path("sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kura-local"] = &clientcmdapi.Cluster{Server: APIServerURL(), CertificateAuthorityData: ca.certPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.certPEM, ClientKeyData: admin.keyPEM}
	kc.Contexts["kura-local"] = &clientcmdapi.Context{Cluster: "kura-local", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "kura-local"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig()); err != nil {
		return fmt.Errorf("failed to write kubeconfig: %w", err)
	}
	return nil
}
