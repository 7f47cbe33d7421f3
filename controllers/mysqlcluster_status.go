package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
)

// StatusOwner is the field owner of the status fields this reconciler writes: the Reconciled
// condition, observedGeneration, the object counts and the running engine. The clustering loop
// owns the topology fields and the Available, Healthy and Degraded conditions.
const StatusOwner = "kura-reconciler"

func condReconciled() metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionTrue, Reason: "Reconciled", Message: "every owned object matches the spec"}
}

func condPaused() metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionFalse, Reason: "Paused", Message: "spec.paused is true: no object or topology changes are made"}
}

// condFenced: an in-place restore stopped the instances (docs/backup.md, "In-place restore").
func condFenced(c *kurav1alpha1.MySQLCluster) metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionFalse, Reason: "FencedByRestore",
		Message: fmt.Sprintf("Restore %s fences the cluster: its instances are stopped and its clustering loop is off while its volumes are switched", c.Annotations[contract.AnnotationRestoreFence])}
}

func condBlocked(b *errBlocked) metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionFalse, Reason: b.reason, Message: b.message}
}

func condWaiting(w *errWaiting) metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionFalse, Reason: w.reason, Message: w.message}
}

func condFailed(step string, err error) metav1.Condition {
	return metav1.Condition{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionFalse, Reason: step + "Failed", Message: err.Error()}
}

// reconcilerStatus holds only the fields this reconciler owns, so that applying it never
// touches the clustering loop's fields.
type reconcilerStatus struct {
	ObservedGeneration int64               `json:"observedGeneration"`
	Conditions         []metav1.Condition  `json:"conditions"`
	Engine             kurav1alpha1.Engine `json:"engine,omitempty"`
	Version            string              `json:"version,omitempty"`
	Replicas           int32               `json:"replicas"`
	ReadyReplicas      int32               `json:"readyReplicas"`
	Ready              string              `json:"ready"`
	CredentialsSecret  string              `json:"credentialsSecret,omitempty"`
	ConfigHash         string              `json:"configHash,omitempty"`
	// Bootstrap is the restore of spec.bootstrap's backup (mysqlcluster_bootstrap.go).
	Bootstrap *kurav1alpha1.BootstrapStatus `json:"bootstrap,omitempty"`
}

func (r *MySQLClusterReconciler) writeStatus(ctx context.Context, p *pass, cond metav1.Condition) error {
	c := p.cluster
	cond.ObservedGeneration = c.Generation
	conds := append([]metav1.Condition(nil), c.Status.Conditions...)
	meta.SetStatusCondition(&conds, cond)
	st := reconcilerStatus{
		ObservedGeneration: c.Generation,
		Conditions:         []metav1.Condition{*meta.FindStatusCondition(conds, cond.Type)},
		Engine:             builder.Engine(c),
		Version:            builder.Version(c),
		CredentialsSecret:  builder.CredentialsSecretName(c),
		ConfigHash:         p.configHash,
		Bootstrap:          bootstrapStatus(p),
	}
	if p.sts != nil {
		st.Replicas = p.sts.Status.Replicas
		st.ReadyReplicas = p.sts.Status.ReadyReplicas
	}
	st.Ready = fmt.Sprintf("%d/%d", st.ReadyReplicas, builder.Replicas(c))
	if p.configHash == "" {
		st.ConfigHash = c.Status.ConfigHash
	}
	if err := apply.Status(ctx, r.Client, c, st, StatusOwner); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
