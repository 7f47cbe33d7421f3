package agent

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

const (
	// ProvisionerName is the provisioner of the default StorageClass.
	ProvisionerName = "kura.dev/local-path"
	// StorageClassName is the default StorageClass.
	StorageClassName = "standard"

	annSelectedNode   = "volume.kubernetes.io/selected-node"
	annProvisioner    = "volume.kubernetes.io/storage-provisioner"
	annProvisionedBy  = "pv.kubernetes.io/provisioned-by"
	annDefaultSC      = "storageclass.kubernetes.io/is-default-class"
	labelHostname     = "kubernetes.io/hostname"
	provisionInterval = 5 * time.Second
)

// provisioner binds claims of the default StorageClass to directories under the state dir,
// deletes them when released, and resizes them (PV and claim status) when a claim grows.
type provisioner struct {
	a       *Agent
	changed chan struct{}
}

func newProvisioner(a *Agent) *provisioner {
	return &provisioner{a: a, changed: make(chan struct{}, 1)}
}

func (p *provisioner) register(f informers.SharedInformerFactory) {
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.poke() },
		UpdateFunc: func(any, any) { p.poke() },
		DeleteFunc: func(any) { p.poke() },
	}
	_, _ = f.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(h)
	_, _ = f.Core().V1().PersistentVolumes().Informer().AddEventHandler(h)
}

func (p *provisioner) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (a *Agent) ensureStorageClass(ctx context.Context) error {
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: StorageClassName, Annotations: map[string]string{annDefaultSC: "true"}},
		Provisioner:          ProvisionerName,
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: ptr.To(true),
	}
	_, err := a.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create storage class: %w", err)
	}
	return nil
}

func (p *provisioner) run(ctx context.Context) {
	t := time.NewTicker(provisionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.changed:
		case <-t.C:
		}
		p.pass(ctx)
	}
}

func (p *provisioner) pass(ctx context.Context) {
	claims, _ := p.a.pvcs.List(labels.Everything())
	for _, c := range claims {
		var err error
		switch {
		case c.Status.Phase == corev1.ClaimPending && c.Spec.VolumeName == "":
			err = p.provision(ctx, c)
		case c.Status.Phase == corev1.ClaimBound:
			err = p.resize(ctx, c)
		}
		if err != nil {
			log.Printf("provisioner: claim %s/%s: %v", c.Namespace, c.Name, err)
		}
	}
	pvs, _ := p.a.pvs.List(labels.Everything())
	for _, pv := range pvs {
		if pv.Annotations[annProvisionedBy] != ProvisionerName || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			continue
		}
		if err := os.RemoveAll(p.a.cfg.Path("volumes", pv.Name)); err != nil {
			log.Printf("provisioner: failed to remove data of %s: %v", pv.Name, err)
			continue
		}
		err := p.a.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			log.Printf("provisioner: failed to delete %s: %v", pv.Name, err)
		}
	}
}

func (p *provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	node := c.Annotations[annSelectedNode]
	if node == "" || c.Annotations[annProvisioner] != ProvisionerName {
		return nil
	}
	name := "pvc-" + string(c.UID)
	if _, err := p.a.pvs.Get(name); err == nil {
		return nil
	}
	dir := p.a.cfg.Path("volumes", name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("failed to create volume dir: %w", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("failed to chmod volume dir: %w", err)
	}
	size := c.Spec.Resources.Requests[corev1.ResourceStorage]
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClassName,
			VolumeMode:                    c.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: labelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	if c.Spec.StorageClassName != nil {
		pv.Spec.StorageClassName = *c.Spec.StorageClassName
	}
	_, err := p.a.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create persistent volume: %w", err)
	}
	return nil
}

// resize grows the PV and the claim's status capacity to the claim's request.
func (p *provisioner) resize(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	want := c.Spec.Resources.Requests[corev1.ResourceStorage]
	have := c.Status.Capacity[corev1.ResourceStorage]
	if want.Cmp(have) <= 0 {
		return nil
	}
	pv, err := p.a.pvs.Get(c.Spec.VolumeName)
	if err != nil || pv.Annotations[annProvisionedBy] != ProvisionerName {
		return nil //nolint:nilerr // not a volume of ours (or not cached yet): nothing to expand
	}
	if cur := pv.Spec.Capacity[corev1.ResourceStorage]; cur.Cmp(want) < 0 {
		upd := pv.DeepCopy()
		upd.Spec.Capacity[corev1.ResourceStorage] = want
		if _, err := p.a.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to grow persistent volume %s: %w", pv.Name, err)
		}
	}
	upd := c.DeepCopy()
	if upd.Status.Capacity == nil {
		upd.Status.Capacity = corev1.ResourceList{}
	}
	upd.Status.Capacity[corev1.ResourceStorage] = want
	upd.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: want}
	upd.Status.Conditions = nil
	upd.Status.AllocatedResourceStatuses = nil
	if _, err := p.a.client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("failed to update claim capacity: %w", err)
	}
	return nil
}
