package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/testenv"
)

var certManagerCRDs sync.Once

// installCertManagerCRDs installs minimal CRDs for cert-manager.io/v1 Certificate, Issuer and
// ClusterIssuer (any spec; the test plays cert-manager's part) and waits until they are served.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	certManagerCRDs.Do(func() {
		ctx := context.Background()
		for _, k := range []struct{ kind, plural, scope string }{
			{"Certificate", "certificates", "Namespaced"}, {"Issuer", "issuers", "Namespaced"}, {"ClusterIssuer", "clusterissuers", "Cluster"},
		} {
			crd := &unstructured.Unstructured{}
			doc := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[2]s.cert-manager.io}
spec:
  group: cert-manager.io
  scope: %[3]s
  names: {kind: %[1]s, plural: %[2]s, singular: %[4]s, listKind: %[1]sList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, k.kind, k.plural, k.scope, k.plural[:len(k.plural)-1])
			if err := yaml.Unmarshal([]byte(doc), &crd.Object); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		eventually(t, "the cert-manager CRDs served", func() error {
			for _, kind := range []string{"Certificate", "Issuer", "ClusterIssuer"} {
				l := &unstructured.UnstructuredList{}
				l.SetAPIVersion("cert-manager.io/v1")
				l.SetKind(kind + "List")
				if err := k8s.List(ctx, l); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// TestMySQLClusterCertManagerIssuer: with spec.tls.issuerRef, a missing Issuer (or
// ClusterIssuer) blocks the cluster with a condition naming it; once it exists the operator
// creates a cert-manager Certificate for the instances' names into "<cluster>-tls", waits for
// cert-manager's Secret without starting any instance, and then the instances mount that
// Secret and clients get its CA. No Kura CA is generated.
func TestMySQLClusterCertManagerIssuer(t *testing.T) {
	installCertManagerCRDs(t)
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.TLS.IssuerRef = &kurav1alpha1.TLSIssuerRef{Name: "shop-issuer"}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionFalse, "TLSIssuerNotFound")
	if msg := reconciledCondition(c).Message; msg != fmt.Sprintf(`spec.tls.issuerRef: Issuer "shop-issuer" not found in namespace %q; create it or name an existing one`, ns) {
		t.Errorf("condition %q", msg)
	}
	if err := k8s.Create(ctx, newMySQLCluster(ns, "other", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.TLS.IssuerRef = &kurav1alpha1.TLSIssuerRef{Name: "no-such-cluster-issuer", Kind: "ClusterIssuer"}
	})); err != nil {
		t.Fatal(err)
	}
	if msg := reconciledCondition(waitReconciled(t, ns, "other", metav1.ConditionFalse, "TLSIssuerNotFound")).Message; msg != `spec.tls.issuerRef: ClusterIssuer "no-such-cluster-issuer" not found in the Kubernetes cluster; create it or name an existing one` {
		t.Errorf("condition %q", msg)
	}

	issuer := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"selfSigned": map[string]any{}}}}
	issuer.SetAPIVersion("cert-manager.io/v1")
	issuer.SetKind("Issuer")
	issuer.SetNamespace(ns)
	issuer.SetName("shop-issuer")
	if err := k8s.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	c = waitReconciled(t, ns, "shop", metav1.ConditionFalse, "TLSCertificatePending")
	cert := &unstructured.Unstructured{}
	cert.SetGroupVersionKind(builder.CertificateGVK)
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-tls"}, cert); err != nil {
		t.Fatalf("the Certificate: %v", err)
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	ref, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
	if secretName != "shop-tls" || !slices.Equal(dns, builder.ServerDNSNames(c)) ||
		ref["name"] != "shop-issuer" || ref["kind"] != "Issuer" || ref["group"] != "cert-manager.io" {
		t.Errorf("Certificate spec: secretName %q, issuerRef %v, dnsNames %v", secretName, ref, dns)
	}
	if owners := cert.GetOwnerReferences(); len(owners) != 1 || owners[0].UID != c.UID {
		t.Errorf("the Certificate is not owned by the cluster: %v", owners)
	}
	if !slices.Contains(dns, builder.InstanceHost(c, 0)) {
		t.Errorf("the Certificate lacks %s", builder.InstanceHost(c, 0))
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
		t.Errorf("instances created before the certificate was issued: %v", err)
	}

	// cert-manager's part: the Secret, labelled by the Certificate's secretTemplate.
	labels, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "secretTemplate", "labels")
	ca, err := builder.CASecret(c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issued, err := builder.ServerTLSSecret(c, ca, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-tls", Labels: labels},
		Type: corev1.SecretTypeTLS, Data: issued.Data}); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	for _, v := range getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Spec.Volumes {
		if v.Name == builder.VolumeServerTLS && v.Secret.SecretName != "shop-tls" {
			t.Errorf("instances mount %s, not cert-manager's Secret", v.Secret.SecretName)
		}
	}
	if got := getObject[corev1.ConfigMap](t, ns, "shop-ca").Data[contract.TLSCAKey]; got != string(issued.Data[contract.TLSCAKey]) {
		t.Error("the CA ConfigMap does not carry the issuer's CA")
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-ca"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Kura CA was generated although cert-manager issues the certificate: %v", err)
	}
}

// Against an API server without cert-manager (its own, fresh, envtest), spec.tls.issuerRef
// blocks the cluster with CertManagerNotInstalled, naming the kind and the fix, for an issuer
// of cert-manager's own group and for an external issuer alike (the Certificate itself cannot
// be created).
func TestCertManagerNotInstalledIsReported(t *testing.T) {
	e := testenv.Start(t)
	r := &MySQLClusterReconciler{Client: e.Client, APIReader: e.Client}
	c := newMySQLCluster("default", "shop")
	for _, ref := range []*kurav1alpha1.TLSIssuerRef{{Name: "ca-issuer"}, {Name: "corp", Kind: "ClusterIssuer", Group: "issuers.example.com"}} {
		c.Spec.TLS.IssuerRef = ref
		_, err := r.certManagerSecret(context.Background(), c, ref)
		var blocked *errBlocked
		if !errors.As(err, &blocked) || blocked.reason != "CertManagerNotInstalled" || !strings.Contains(blocked.message, "install cert-manager") {
			t.Errorf("issuer %+v without cert-manager: %v", ref, err)
		}
	}
}
