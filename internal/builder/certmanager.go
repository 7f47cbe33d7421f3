package builder

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// cert-manager's API, addressed without its Go module (docs/security.md, "cert-manager").
const (
	CertManagerGroup = "cert-manager.io"
	certManagerVer   = "v1"
)

// CertificateGVK is cert-manager's Certificate kind.
var CertificateGVK = schema.GroupVersionKind{Group: CertManagerGroup, Version: certManagerVer, Kind: "Certificate"}

// IssuerGVK is the kind of the issuer spec.tls.issuerRef names, with the defaults applied
// (kind Issuer, group cert-manager.io).
func IssuerGVK(ref *kurav1alpha1.TLSIssuerRef) schema.GroupVersionKind {
	gvk := schema.GroupVersionKind{Group: ref.Group, Version: certManagerVer, Kind: ref.Kind}
	if gvk.Group == "" {
		gvk.Group = CertManagerGroup
	}
	if gvk.Kind == "" {
		gvk.Kind = "Issuer"
	}
	return gvk
}

// Certificate is the cert-manager Certificate for the cluster's server certificate when
// spec.tls.issuerRef is set: the names Kura's own certificate carries (ServerDNSNames and
// loopback), an ECDSA P-256 key, written to the Secret the instances mount
// (TLSSecretName), labelled for the cluster so the operator sees it change.
func Certificate(c *kurav1alpha1.MySQLCluster) *unstructured.Unstructured {
	ref := c.Spec.TLS.IssuerRef
	gvk := IssuerGVK(ref)
	dns := make([]any, 0, len(ServerDNSNames(c)))
	for _, n := range ServerDNSNames(c) {
		dns = append(dns, n)
	}
	ips := make([]any, 0, len(serverIPs))
	for _, ip := range serverIPs {
		ips = append(ips, ip.String())
	}
	labels := map[string]any{}
	for k, v := range CommonLabels(c) {
		labels[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"secretName":     TLSSecretName(c),
			"secretTemplate": map[string]any{"labels": labels},
			"dnsNames":       dns,
			"ipAddresses":    ips,
			"usages":         []any{"server auth", "digital signature"},
			"privateKey":     map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
			"issuerRef":      map[string]any{"name": ref.Name, "kind": gvk.Kind, "group": gvk.Group},
		},
	}}
	u.SetGroupVersionKind(CertificateGVK)
	m := objectMeta(c, TLSSecretName(c), nil, nil)
	u.SetName(m.Name)
	u.SetNamespace(m.Namespace)
	u.SetLabels(m.Labels)
	u.SetOwnerReferences(m.OwnerReferences)
	return u
}
