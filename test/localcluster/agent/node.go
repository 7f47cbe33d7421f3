package agent

import (
	"context"
	"fmt"
	"log"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kura-db/kura/test/localcluster"
)

const (
	leaseDuration  = 40 * time.Second
	leaseRenew     = 10 * time.Second
	statusInterval = 30 * time.Second
	kubeletVersion = "v1.37.2-kura-local"
)

func isNotFoundOrConflict(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

func nodeObject(name string, index int) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kura.dev/local-node":    "true",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", index), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", index)}},
	}
}

func nodeStatus(now metav1.Time) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("16Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kura-local agent"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kura-local agent"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kura-local agent"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kura-local agent is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: localcluster.HostIP}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          kubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
			ContainerRuntimeVersion: "kura-local://1",
		},
	}
}

// registerNodes creates (or takes over) the Nodes and reports them Ready.
func (a *Agent) registerNodes(ctx context.Context) error {
	for name, idx := range a.nodes {
		want := nodeObject(name, idx)
		n, err := a.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n, err = a.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("failed to register node %s: %w", name, err)
		}
		if err := a.updateNodeStatus(ctx, n); err != nil {
			return err
		}
		if err := a.renewLease(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) updateNodeStatus(ctx context.Context, n *corev1.Node) error {
	n = n.DeepCopy()
	old := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range n.Status.Conditions {
		old[c.Type] = c
	}
	st := nodeStatus(metav1.Now())
	for i, c := range st.Conditions {
		if o, ok := old[c.Type]; ok && o.Status == c.Status {
			st.Conditions[i].LastTransitionTime = o.LastTransitionTime
		}
	}
	n.Status = st
	if _, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("failed to update status of node %s: %w", n.Name, err)
	}
	return nil
}

func (a *Agent) renewLease(ctx context.Context, name string) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create lease of node %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to get lease of node %s: %w", name, err)
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(name)
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("failed to renew lease of node %s: %w", name, err)
	}
	return nil
}

// heartbeat renews the node leases every 10s and re-posts node status every 30s.
func (a *Agent) heartbeat(ctx context.Context) {
	lease := time.NewTicker(leaseRenew)
	status := time.NewTicker(statusInterval)
	defer lease.Stop()
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			for name := range a.nodes {
				if err := a.renewLease(ctx, name); err != nil {
					log.Print(err)
				}
			}
		case <-status.C:
			for name := range a.nodes {
				n, err := a.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					idx := a.nodes[name]
					n, err = a.client.CoreV1().Nodes().Create(ctx, nodeObject(name, idx), metav1.CreateOptions{})
				}
				if err == nil {
					err = a.updateNodeStatus(ctx, n)
				}
				if err != nil {
					log.Print(err)
				}
			}
		}
	}
}
