package builder

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Lifetimes of the generated certificates (docs/security.md, "TLS").
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 365 * 24 * time.Hour
	// certBackdate covers clocks a little behind the operator's.
	certBackdate = 5 * time.Minute
)

// TLSKeys are the keys a server certificate Secret must hold (generated or the user's).
var TLSKeys = []string{contract.TLSCertKey, contract.TLSKeyKey, contract.TLSCAKey}

// TLSEnabled reports whether the instances serve TLS: spec.tls.enabled, true when unset.
func TLSEnabled(c *kurav1alpha1.MySQLCluster) bool {
	return c.Spec.TLS.Enabled == nil || *c.Spec.TLS.Enabled
}

// AgentServesTLS reports whether an instance Pod's agent serves its API over HTTPS: its
// agent container mounts the server certificate's key. Pods of earlier versions mount the CA
// alone there, and those with TLS disabled nothing: their agents serve plain HTTP.
func AgentServesTLS(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.Name != VolumeAgentTLS || v.Secret == nil {
			continue
		}
		for _, it := range v.Secret.Items {
			if it.Key == contract.TLSKeyKey {
				return true
			}
		}
	}
	return false
}

// CASecretName is the generated CA's Secret (keys ca.crt, ca.key).
func CASecretName(c *kurav1alpha1.MySQLCluster) string { return c.Name + "-ca" }

// CAConfigMapName is the ConfigMap with the CA certificate alone (key ca.crt), for clients.
func CAConfigMapName(c *kurav1alpha1.MySQLCluster) string { return c.Name + "-ca" }

// TLSSecretName is the server certificate Secret: spec.tls.secretName, or the generated
// "<cluster>-tls".
func TLSSecretName(c *kurav1alpha1.MySQLCluster) string {
	if c.Spec.TLS.SecretName != "" {
		return c.Spec.TLS.SecretName
	}
	return c.Name + "-tls"
}

// maxInstances is the most instances a cluster can have (spec.replicas is at most 9): the
// certificate names every one of them, so scaling never needs a new certificate.
const maxInstances = 9

// ServerDNSNames are the names the server certificate covers: each instance under the
// headless Service (with and without the cluster domain, and the short forms), a wildcard
// under the headless Service, the primary and replicas Services, and localhost (the agent
// and `kura mysqld` connect to their own server over loopback).
func ServerDNSNames(c *kurav1alpha1.MySQLCluster) []string {
	ns := c.Namespace
	headless := HeadlessServiceName(c)
	var names []string
	for n := int32(0); n < maxInstances; n++ {
		pod := PodName(c, n)
		names = append(names,
			fmt.Sprintf("%s.%s.%s.svc.cluster.local", pod, headless, ns),
			fmt.Sprintf("%s.%s.%s.svc", pod, headless, ns),
			fmt.Sprintf("%s.%s.%s", pod, headless, ns),
			fmt.Sprintf("%s.%s", pod, headless))
	}
	names = append(names,
		fmt.Sprintf("*.%s.%s.svc.cluster.local", headless, ns),
		fmt.Sprintf("*.%s.%s.svc", headless, ns))
	for _, svc := range []string{PrimaryServiceName(c), ReplicasServiceName(c)} {
		names = append(names, svc, svc+"."+ns, svc+"."+ns+".svc", svc+"."+ns+".svc.cluster.local")
	}
	return append(names, "localhost")
}

// serverIPs: loopback, for the same local connections as "localhost".
var serverIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// RenewalDue reports whether a certificate valid from notBefore to notAfter must be renewed
// at now: once less than a third of its lifetime is left (or it is not valid yet or any
// more).
func RenewalDue(notBefore, notAfter, now time.Time) bool {
	if !notAfter.After(notBefore) || now.Before(notBefore) {
		return true
	}
	return !now.Before(RenewalTime(notBefore, notAfter))
}

// RenewalTime is when a certificate valid from notBefore to notAfter becomes due: a third of
// its lifetime before it expires.
func RenewalTime(notBefore, notAfter time.Time) time.Time {
	return notAfter.Add(-notAfter.Sub(notBefore) / 3)
}

// CASecret builds a new CA for the cluster: an ECDSA P-256 key and a self-signed certificate
// valid CALifetime. The reconciler creates it once and never updates it.
func CASecret(c *kurav1alpha1.MySQLCluster, now time.Time) (*corev1.Secret, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("Kura CA %s/%s", c.Namespace, c.Name), Organization: []string{"Kura"}},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	certPEM, keyPEM, err := issue(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: objectMeta(c, CASecretName(c), nil, nil),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			contract.TLSCAKey:    certPEM,
			contract.TLSCAKeyKey: keyPEM,
		},
	}, nil
}

// ServerTLSSecret builds the generated server certificate Secret: a new ECDSA P-256 key and a
// certificate for ServerDNSNames signed by the CA in caSecret, valid ServerLifetime, with
// the CA certificate next to it.
func ServerTLSSecret(c *kurav1alpha1.MySQLCluster, caSecret *corev1.Secret, now time.Time) (*corev1.Secret, error) {
	caCert, caKey, err := ParseCA(caSecret)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(ServerLifetime)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: PrimaryServiceName(c) + "." + c.Namespace + ".svc", Organization: []string{"Kura"}},
		DNSNames:    ServerDNSNames(c),
		IPAddresses: serverIPs,
		NotBefore:   now.Add(-certBackdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		// Client auth too: a replica presents nothing today, but the same certificate may
		// later authenticate instances to each other.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err := issue(tmpl, caCert, caKey)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: objectMeta(c, TLSSecretName(c), nil, nil),
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			contract.TLSCertKey: certPEM,
			contract.TLSKeyKey:  keyPEM,
			contract.TLSCAKey:   caSecret.Data[contract.TLSCAKey],
		},
	}, nil
}

// ServerRenewalReason says why the generated server certificate in tlsSecret must be issued
// again at now, or "" when it is good: unreadable, not signed by the CA of caSecret, missing
// one of ServerDNSNames, or within a third of its lifetime of expiry (RenewalDue).
func ServerRenewalReason(c *kurav1alpha1.MySQLCluster, tlsSecret, caSecret *corev1.Secret, now time.Time) string {
	if missing := MissingTLSKeys(tlsSecret); len(missing) > 0 {
		return "key " + missing[0] + " is missing"
	}
	cert, err := ParseCertificate(tlsSecret.Data[contract.TLSCertKey])
	if err != nil {
		return err.Error()
	}
	if !bytes.Equal(tlsSecret.Data[contract.TLSCAKey], caSecret.Data[contract.TLSCAKey]) {
		return "the CA differs from " + caSecret.Name
	}
	caCert, _, err := ParseCA(caSecret)
	if err != nil {
		return err.Error()
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return "not signed by the cluster's CA"
	}
	for _, n := range ServerDNSNames(c) {
		if !slices.Contains(cert.DNSNames, n) {
			return "does not cover " + n
		}
	}
	if RenewalDue(cert.NotBefore, cert.NotAfter, now) {
		return fmt.Sprintf("expires %s, within a third of its lifetime", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// ServerCertificateProblem says what makes a server certificate Secret that Kura did not
// issue (spec.tls.secretName, cert-manager's) unfit to serve, "" when nothing does: tls.key
// does not match tls.crt, the certificate is expired or not valid yet, ca.crt does not verify
// it, or it does not cover an instance's DNS name or 127.0.0.1 (the agents' loopback).
func ServerCertificateProblem(c *kurav1alpha1.MySQLCluster, s *corev1.Secret, now time.Time) string {
	pair, err := tls.X509KeyPair(s.Data[contract.TLSCertKey], s.Data[contract.TLSKeyKey])
	if err != nil {
		return fmt.Sprintf("%s and %s are not a certificate and its private key: %v", contract.TLSCertKey, contract.TLSKeyKey, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Sprintf("%s: %v", contract.TLSCertKey, err)
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Sprintf("the certificate in %s expired at %s", contract.TLSCertKey, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("the certificate in %s is not valid before %s", contract.TLSCertKey, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data[contract.TLSCAKey]) {
		return contract.TLSCAKey + " holds no PEM certificate"
	}
	for _, der := range pair.Certificate[1:] {
		if cert, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(cert)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Sprintf("%s does not verify the certificate in %s: %v", contract.TLSCAKey, contract.TLSCertKey, err)
	}
	names := []string{"127.0.0.1"}
	for n := int32(0); n < StatefulSetReplicas(c); n++ {
		names = append(names, InstanceHost(c, n))
	}
	for _, name := range names {
		if err := leaf.VerifyHostname(name); err != nil {
			return fmt.Sprintf("the certificate in %s does not cover %s", contract.TLSCertKey, name)
		}
	}
	return ""
}

// ParseCA reads the CA certificate and key of a CA Secret.
func ParseCA(s *corev1.Secret) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := ParseCertificate(s.Data[contract.TLSCAKey])
	if err != nil {
		return nil, nil, fmt.Errorf("the CA Secret %s: %w", s.Name, err)
	}
	block, _ := pem.Decode(s.Data[contract.TLSCAKeyKey])
	if block == nil {
		return nil, nil, fmt.Errorf("the CA Secret %s: key %s holds no PEM block", s.Name, contract.TLSCAKeyKey)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA Secret %s: key %s: %w", s.Name, contract.TLSCAKeyKey, err)
	}
	return cert, key, nil
}

// MissingTLSKeys returns the keys a server certificate Secret lacks or holds empty.
func MissingTLSKeys(s *corev1.Secret) []string { return missingKeys(s, TLSKeys) }

// CAConfigMap publishes the CA certificate clients verify the servers with.
func CAConfigMap(c *kurav1alpha1.MySQLCluster, caPEM []byte) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   typeMeta("v1", "ConfigMap"),
		ObjectMeta: objectMeta(c, CAConfigMapName(c), nil, nil),
		Data:       map[string]string{contract.TLSCAKey: string(caPEM)},
	}
	StampHash(&cm.ObjectMeta, cm.Data)
	return cm
}

// TLSHash is a short hash of a server certificate Secret's CA: the instance Pod template
// carries it, so a new CA rolls the instances (everything that verifies the servers changes at
// once). A renewed server certificate from the same CA does not roll them: `kura mysqld`
// sees the mounted files change and the server reloads them in place (FLUSH SSL).
func TLSHash(s *corev1.Secret) string {
	h := sha256.New()
	h.Write(s.Data[contract.TLSCAKey])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ParseCertificate reads the first PEM certificate of pemBytes.
func ParseCertificate(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("unreadable certificate: %w", err)
	}
	return cert, nil
}

// issue generates an ECDSA P-256 key and a certificate for it from tmpl, signed by parent's
// signer, or self-signed when parent is nil; both PEM-encoded.
func issue(tmpl, parent *x509.Certificate, signer *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate a key: %w", err)
	}
	if parent == nil {
		parent, signer = tmpl, key
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126)); err != nil {
		return nil, nil, fmt.Errorf("failed to read random bytes: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to sign the certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to encode the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// tlsVolume is the server certificate Secret as files in contract.TLSDir, only keys, mode
// 0400 (group-readable for the Pod's fsGroup, the server's group).
func tlsVolume(c *kurav1alpha1.MySQLCluster, name string, keys []string) corev1.Volume {
	items := make([]corev1.KeyToPath, 0, len(keys))
	for _, k := range keys {
		items = append(items, corev1.KeyToPath{Key: k, Path: k})
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  TLSSecretName(c),
		Items:       items,
		DefaultMode: ptr.To[int32](0o400),
	}}}
}

// volumeCA is the CA certificate alone, for the backup Jobs and the archiver.
const volumeCA = "ca"

// caVolumes are the cluster's CA certificate (ConfigMap <cluster>-ca) mounted at
// contract.TLSDir, for a Pod that connects to the instances over TCP; none without TLS. The
// volume is optional: without it the Pod connects in clear text.
func caVolumes(c *kurav1alpha1.MySQLCluster) ([]corev1.Volume, []corev1.VolumeMount) {
	if !TLSEnabled(c) {
		return nil, nil
	}
	return []corev1.Volume{{Name: volumeCA, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: CAConfigMapName(c)},
			Items:                []corev1.KeyToPath{{Key: contract.TLSCAKey, Path: contract.TLSCAKey}},
			DefaultMode:          ptr.To[int32](0o444),
			Optional:             ptr.To(true),
		}}}},
		[]corev1.VolumeMount{tlsMount(volumeCA)}
}

// tlsMount mounts a TLS volume read-only at contract.TLSDir.
func tlsMount(volume string) corev1.VolumeMount {
	return corev1.VolumeMount{Name: volume, MountPath: contract.TLSDir, ReadOnly: true}
}
