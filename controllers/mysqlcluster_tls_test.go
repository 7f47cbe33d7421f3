package controllers

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
)

type clientObject = client.Object

func getObject[T any, PT interface {
	*T
	clientObject
}](t *testing.T, ns, name string) PT {
	t.Helper()
	o := PT(new(T))
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, o); err != nil {
		t.Fatalf("%T %s: %v", o, name, err)
	}
	return o
}

// TestMySQLClusterTLSByDefault: a new cluster gets its CA, a server certificate signed by it,
// the CA for clients in a ConfigMap, and instances that mount the certificate and serve it.
func TestMySQLClusterTLSByDefault(t *testing.T) {
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	if c.Spec.TLS.Enabled == nil || !*c.Spec.TLS.Enabled || c.Spec.TLS.RequireSecureTransport {
		t.Errorf("spec.tls defaults: %+v", c.Spec.TLS)
	}
	ca := getObject[corev1.Secret](t, ns, "shop-ca")
	srv := getObject[corev1.Secret](t, ns, "shop-tls")
	cm := getObject[corev1.ConfigMap](t, ns, "shop-ca")
	for _, o := range []clientObject{ca, srv, cm} {
		if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != c.UID || o.GetLabels()[contract.LabelCluster] != "shop" {
			t.Errorf("%s: not labelled and owned by the cluster: %v %v", o.GetName(), o.GetLabels(), refs)
		}
	}
	if len(ca.Data[contract.TLSCAKeyKey]) == 0 || cm.Data[contract.TLSCAKey] != string(ca.Data[contract.TLSCAKey]) ||
		!bytes.Equal(srv.Data[contract.TLSCAKey], ca.Data[contract.TLSCAKey]) {
		t.Error("the ConfigMap and the server Secret must carry the CA's certificate")
	}
	if _, hasKey := cm.Data[contract.TLSCAKeyKey]; hasKey {
		t.Error("the ConfigMap leaks the CA key")
	}
	if r := builder.ServerRenewalReason(c, srv, ca, time.Now()); r != "" {
		t.Errorf("the issued certificate is not good: %s", r)
	}
	sts := getObject[appsv1.StatefulSet](t, ns, "shop")
	if h := sts.Spec.Template.Annotations[contract.AnnotationTLSHash]; h != builder.TLSHash(srv) {
		t.Errorf("Pod template TLS hash %q, want %q", h, builder.TLSHash(srv))
	}
	mycnf := getObject[corev1.ConfigMap](t, ns, "shop-config").Data["my.cnf"]
	if !strings.Contains(mycnf, "ssl_cert = "+contract.TLSCertFile) || strings.Contains(mycnf, "require_secure_transport") {
		t.Errorf("my.cnf:\n%s", mycnf)
	}
}

// TestMySQLClusterRenewsServerCertificate: a certificate near its expiry is issued again by
// the same CA, which is left untouched; the Pod template does not change (the servers reload
// the renewed files in place, TestRenewedCertificateIsReloadedInPlace).
func TestMySQLClusterRenewsServerCertificate(t *testing.T) {
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	ca := getObject[corev1.Secret](t, ns, "shop-ca")
	srv := getObject[corev1.Secret](t, ns, "shop-tls")
	template := getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Annotations[contract.AnnotationTLSHash]
	// A certificate issued 0.7 of a lifetime ago: less than a third is left.
	old, err := builder.ServerTLSSecret(c, ca, time.Now().Add(-builder.ServerLifetime*7/10))
	if err != nil {
		t.Fatal(err)
	}
	srv.Data = old.Data
	if err := k8s.Update(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a renewed certificate", func() error {
		now := getObject[corev1.Secret](t, ns, "shop-tls")
		if bytes.Equal(now.Data[contract.TLSCertKey], old.Data[contract.TLSCertKey]) {
			return fmt.Errorf("still the near-expiry certificate")
		}
		if r := builder.ServerRenewalReason(c, now, ca, time.Now()); r != "" {
			return fmt.Errorf("renewed certificate not good: %s", r)
		}
		return nil
	})
	if h := getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Annotations[contract.AnnotationTLSHash]; h == "" || h != template {
		t.Errorf("the Pod template's TLS hash went from %q to %q: a renewal would roll the instances", template, h)
	}
	if after := getObject[corev1.Secret](t, ns, "shop-ca"); after.ResourceVersion != ca.ResourceVersion {
		t.Error("the CA was rewritten by a renewal")
	}
}

// TestMySQLClusterUserTLSSecretMissingKey: a user's certificate Secret without tls.key blocks
// the cluster with a condition naming the Secret and the key; adding it unblocks it.
func TestMySQLClusterUserTLSSecretMissingKey(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	probe := newMySQLCluster(ns, "shop")
	probe.Namespace = ns
	ca, err := builder.CASecret(probe, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issued, err := builder.ServerTLSSecret(probe, ca, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-cert"},
		Data: map[string][]byte{contract.TLSCertKey: issued.Data[contract.TLSCertKey], contract.TLSCAKey: issued.Data[contract.TLSCAKey]}}
	if err := k8s.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.SecretName = "my-cert" })); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionFalse, "TLSSecretInvalid")
	if msg := reconciledCondition(c).Message; !strings.Contains(msg, `"my-cert"`) || !strings.Contains(msg, contract.TLSKeyKey) || !strings.Contains(msg, "spec.tls.secretName") {
		t.Errorf("the condition must name the field, the Secret and the key: %q", msg)
	}
	mine.Data[contract.TLSKeyKey] = issued.Data[contract.TLSKeyKey]
	if err := k8s.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	if got := getObject[corev1.ConfigMap](t, ns, "shop-ca").Data[contract.TLSCAKey]; got != string(issued.Data[contract.TLSCAKey]) {
		t.Error("the CA ConfigMap does not carry the user's CA")
	}
	vols := getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Spec.Volumes
	for _, v := range vols {
		if v.Name == builder.VolumeServerTLS && v.Secret.SecretName != "my-cert" {
			t.Errorf("instances mount %s, not the user's Secret", v.Secret.SecretName)
		}
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-ca"}, &corev1.Secret{}); err == nil {
		t.Error("a CA was generated although the user brings the certificate")
	}
	if got := getObject[corev1.Secret](t, ns, "my-cert"); len(got.OwnerReferences) != 0 {
		t.Error("the user's Secret was taken over")
	}
}

// TestMySQLClusterTLSDisabled: no certificate, no mount, no ssl_* in my.cnf.
func TestMySQLClusterTLSDisabled(t *testing.T) {
	ns := newNamespace(t)
	off := false
	if err := k8s.Create(context.Background(), newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.Enabled = &off })); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop-tls"}, &corev1.Secret{}); err == nil {
		t.Error("a certificate was issued with TLS disabled")
	}
	if mycnf := getObject[corev1.ConfigMap](t, ns, "shop-config").Data["my.cnf"]; strings.Contains(mycnf, "ssl_") {
		t.Errorf("my.cnf configures TLS:\n%s", mycnf)
	}
}

// TestMySQLClusterUserCertificateUnfit: a user's certificate that is expired, whose key does
// not match it, or that does not cover the instances' names blocks the cluster with a
// condition saying so, and the instances are never rolled onto it: the StatefulSet keeps the
// last good certificate's hash.
func TestMySQLClusterUserCertificateUnfit(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	probe := newMySQLCluster(ns, "shop")
	probe.Namespace = ns
	issue := func(c *kurav1alpha1.MySQLCluster, at time.Time) *corev1.Secret {
		t.Helper()
		ca, err := builder.CASecret(c, at)
		if err != nil {
			t.Fatal(err)
		}
		s, err := builder.ServerTLSSecret(c, ca, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := issue(probe, time.Now())
	// Labelled for the cluster, so the operator sees each change at once (docs/security.md).
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-cert", Labels: map[string]string{contract.LabelCluster: "shop"}}, Data: good.Data}
	if err := k8s.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.SecretName = "my-cert" })); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	hash := getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Annotations[contract.AnnotationTLSHash]

	elsewhere := probe.DeepCopy()
	elsewhere.Namespace = "elsewhere"
	expired := issue(probe, time.Now().Add(-2*builder.ServerLifetime))
	other := issue(probe, time.Now())
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"expired", expired.Data, "expired at"},
		{"another key", map[string][]byte{contract.TLSCertKey: good.Data[contract.TLSCertKey], contract.TLSKeyKey: other.Data[contract.TLSKeyKey], contract.TLSCAKey: good.Data[contract.TLSCAKey]}, "private key"},
		{"another namespace's names", issue(elsewhere, time.Now()).Data, "does not cover shop-0.shop-instances." + ns},
		{"another CA", map[string][]byte{contract.TLSCertKey: good.Data[contract.TLSCertKey], contract.TLSKeyKey: good.Data[contract.TLSKeyKey], contract.TLSCAKey: other.Data[contract.TLSCAKey]}, "does not verify"},
	} {
		mine = getObject[corev1.Secret](t, ns, "my-cert")
		mine.Data = tc.data
		if err := k8s.Update(ctx, mine); err != nil {
			t.Fatal(err)
		}
		eventually(t, tc.name+" reported", func() error {
			cond := reconciledCondition(getObject[kurav1alpha1.MySQLCluster](t, ns, "shop"))
			if cond == nil || cond.Reason != "TLSCertificateInvalid" || !strings.Contains(cond.Message, tc.want) || !strings.Contains(cond.Message, `spec.tls.secretName: Secret "my-cert"`) {
				return fmt.Errorf("condition %+v, want reason TLSCertificateInvalid naming the field, the Secret and %q", cond, tc.want)
			}
			return nil
		})
		if got := getObject[appsv1.StatefulSet](t, ns, "shop").Spec.Template.Annotations[contract.AnnotationTLSHash]; got != hash {
			t.Errorf("%s: the instances were rolled onto the unfit certificate", tc.name)
		}
	}
	mine = getObject[corev1.Secret](t, ns, "my-cert")
	mine.Data = good.Data
	if err := k8s.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
}
