package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
)

// tlsRecheck bounds how long a cluster goes without its TLS step: a generated certificate is
// renewed on time, and a change to a user's certificate Secret that the cache does not hold
// (it has no kura.dev/cluster label) is picked up.
const tlsRecheck = time.Hour

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;patch;update
// +kubebuilder:rbac:groups=cert-manager.io,resources=issuers;clusterissuers,verbs=get;list;watch

// reconcileTLS makes sure the instances have a server certificate when spec.tls.enabled: the
// one cert-manager issues for spec.tls.issuerRef, the user's Secret (spec.tls.secretName),
// checked for its keys and fitness, or the cluster's own CA
// ("<cluster>-ca", created once, never updated) and a certificate it signed ("<cluster>-tls",
// issued again when ServerRenewalReason says so). The CA certificate is published in the
// ConfigMap "<cluster>-ca" for clients. A problem with the user's Secret blocks the cluster
// with a condition naming the Secret and the key.
func (r *MySQLClusterReconciler) reconcileTLS(ctx context.Context, p *pass) error {
	c := p.cluster
	if !builder.TLSEnabled(c) {
		return nil
	}
	p.requeueAfter = tlsRecheck
	var server *corev1.Secret
	if ref := c.Spec.TLS.IssuerRef; ref != nil {
		s, err := r.certManagerSecret(ctx, c, ref)
		if err != nil {
			return err
		}
		server = s
	} else if name := c.Spec.TLS.SecretName; name != "" {
		s, err := r.userTLSSecret(ctx, c, name)
		if err != nil {
			return err
		}
		server = s
	} else {
		ca, err := r.ensureCA(ctx, c)
		if err != nil {
			return err
		}
		if server, err = r.ensureServerCertificate(ctx, p, ca); err != nil {
			return err
		}
	}
	p.tlsHash = builder.TLSHash(server)
	return r.apply(ctx, builder.CAConfigMap(c, server.Data[contract.TLSCAKey]))
}

func (r *MySQLClusterReconciler) userTLSSecret(ctx context.Context, c *kurav1alpha1.MySQLCluster, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.liveReader().Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &errBlocked{reason: "TLSSecretNotFound", recheck: true,
			message: fmt.Sprintf("spec.tls.secretName: Secret %q not found in namespace %q; create it with keys %s", name, c.Namespace, strings.Join(builder.TLSKeys, ", "))}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	return s, r.checkServerSecret(c, s, "spec.tls.secretName", "put a valid certificate for the instances' names, its key and its CA in the Secret")
}

func (r *MySQLClusterReconciler) liveReader() client.Reader {
	if r.APIReader == nil {
		return r.Client
	}
	return r.APIReader
}

// checkServerSecret blocks the cluster on a server certificate Secret Kura did not issue that
// lacks a key or cannot serve (builder.ServerCertificateProblem), with a condition naming
// field, the Secret and the problem. The instances are not rolled onto it: the StatefulSet
// keeps the hash of the last good one.
func (r *MySQLClusterReconciler) checkServerSecret(c *kurav1alpha1.MySQLCluster, s *corev1.Secret, field, fix string) error {
	if missing := builder.MissingTLSKeys(s); len(missing) > 0 {
		msg := fmt.Sprintf("%s: Secret %q lacks key(s) %s; add them (PEM, non-empty) to the Secret", field, s.Name, strings.Join(missing, ", "))
		r.Recorder.Emit(c, events.Warning, events.TLSInvalid, "%s", msg)
		return &errBlocked{reason: "TLSSecretInvalid", recheck: true, message: msg}
	}
	if problem := builder.ServerCertificateProblem(c, s, time.Now()); problem != "" {
		msg := fmt.Sprintf("%s: Secret %q: %s; %s", field, s.Name, problem, fix)
		r.Recorder.Emit(c, events.Warning, events.TLSInvalid, "%s", msg)
		return &errBlocked{reason: "TLSCertificateInvalid", recheck: true, message: msg}
	}
	return nil
}

// certManagerSecret makes sure cert-manager issues the server certificate when
// spec.tls.issuerRef is set: the issuer must exist (for cert-manager.io's own kinds), the
// Certificate "<cluster>-tls" is applied, and the Secret cert-manager writes is returned
// once it holds a certificate that can serve. Until then the cluster is blocked with a
// condition saying what is missing, and no instance is started or rolled.
func (r *MySQLClusterReconciler) certManagerSecret(ctx context.Context, c *kurav1alpha1.MySQLCluster, ref *kurav1alpha1.TLSIssuerRef) (*corev1.Secret, error) {
	gvk := builder.IssuerGVK(ref)
	notInstalled := func(kind string) error {
		return &errBlocked{reason: "CertManagerNotInstalled", recheck: true,
			message: fmt.Sprintf("spec.tls.issuerRef: the API server does not serve kind %s of %s/v1; install cert-manager, or remove spec.tls.issuerRef to use Kura's own CA", kind, gvk.Group)}
	}
	if gvk.Group == builder.CertManagerGroup {
		issuer := &unstructured.Unstructured{}
		issuer.SetGroupVersionKind(gvk)
		key := types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}
		where := fmt.Sprintf("in namespace %q", c.Namespace)
		if gvk.Kind == "ClusterIssuer" {
			key.Namespace, where = "", "in the Kubernetes cluster"
		}
		err := r.liveReader().Get(ctx, key, issuer)
		switch {
		case meta.IsNoMatchError(err):
			return nil, notInstalled(gvk.Kind)
		case apierrors.IsNotFound(err):
			return nil, &errBlocked{reason: "TLSIssuerNotFound", recheck: true,
				message: fmt.Sprintf("spec.tls.issuerRef: %s %q not found %s; create it or name an existing one", gvk.Kind, ref.Name, where)}
		case apierrors.IsForbidden(err):
			// An operator scoped to namespaces may not read ClusterIssuers: cert-manager
			// reports a missing one on the Certificate, and the Secret stays pending.
		case err != nil:
			return nil, fmt.Errorf("failed to get %s %s: %w", gvk.Kind, ref.Name, err)
		}
	}
	if err := r.apply(ctx, builder.Certificate(c)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, notInstalled("Certificate")
		}
		return nil, err
	}
	name := builder.TLSSecretName(c)
	s := &corev1.Secret{}
	err := r.liveReader().Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &errBlocked{reason: "TLSCertificatePending", recheck: true,
			message: fmt.Sprintf("waiting for cert-manager to issue Certificate %q into Secret %q (kubectl describe certificate %s -n %s says why it has not)", name, name, name, c.Namespace)}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	return s, r.checkServerSecret(c, s, "spec.tls.issuerRef", "see kubectl describe certificate "+name+"; the issuer must publish its CA in ca.crt (a CA, self-signed or Vault issuer does)")
}

// ensureCA returns the cluster's CA Secret, creating it the first time.
func (r *MySQLClusterReconciler) ensureCA(ctx context.Context, c *kurav1alpha1.MySQLCluster) (*corev1.Secret, error) {
	name := builder.CASecretName(c)
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, s)
	if err == nil {
		if _, _, perr := builder.ParseCA(s); perr != nil {
			return nil, &errBlocked{reason: "TLSCAInvalid", message: fmt.Sprintf("%v; delete Secret %q to have a new CA generated (every client must then trust the new one)", perr, name)}
		}
		return s, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	gen, err := builder.CASecret(c, time.Now())
	if err != nil {
		return nil, err
	}
	if err := r.Client.Create(ctx, gen); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, &errWaiting{reason: "TLSCACreated", message: "waiting for the CA Secret to reach the cache"}
		}
		return nil, fmt.Errorf("failed to create Secret %s: %w", name, err)
	}
	r.Recorder.Emit(c, events.Normal, events.TLSIssued, "generated the cluster's CA in Secret %s", name)
	return gen, nil
}

// ensureServerCertificate returns the generated server certificate Secret, issuing it the
// first time and again when it is due (builder.ServerRenewalReason). The Secret is updated in
// place; the servers reload the new certificate from their mounted files (kura mysqld).
func (r *MySQLClusterReconciler) ensureServerCertificate(ctx context.Context, p *pass, ca *corev1.Secret) (*corev1.Secret, error) {
	c := p.cluster
	name := builder.TLSSecretName(c)
	now := time.Now()
	live := &corev1.Secret{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, live)
	switch {
	case apierrors.IsNotFound(err):
		gen, err := builder.ServerTLSSecret(c, ca, now)
		if err != nil {
			return nil, err
		}
		if err := r.Client.Create(ctx, gen); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil, &errWaiting{reason: "TLSCertificateIssued", message: "waiting for the certificate Secret to reach the cache"}
			}
			return nil, fmt.Errorf("failed to create Secret %s: %w", name, err)
		}
		r.Recorder.Emit(c, events.Normal, events.TLSIssued, "issued the server certificate in Secret %s", name)
		return gen, nil
	case err != nil:
		return nil, fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	reason := builder.ServerRenewalReason(c, live, ca, now)
	if reason == "" {
		if cert, err := builder.ParseCertificate(live.Data[contract.TLSCertKey]); err == nil {
			if d := time.Until(builder.RenewalTime(cert.NotBefore, cert.NotAfter)); d < p.requeueAfter {
				p.requeueAfter = max(d, time.Second)
			}
		}
		return live, nil
	}
	gen, err := builder.ServerTLSSecret(c, ca, now)
	if err != nil {
		return nil, err
	}
	live.Data = gen.Data
	if err := r.Client.Update(ctx, live); err != nil {
		return nil, fmt.Errorf("failed to renew the certificate in Secret %s: %w", name, err)
	}
	r.Recorder.Emit(c, events.Normal, events.TLSIssued, "renewed the server certificate in Secret %s: %s", name, reason)
	return live, nil
}
