package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/contract"
)

// OwnedSelector selects the objects Kura creates: every one of them (instance Pods, their
// PVCs, Secrets, ConfigMaps, Services, StatefulSets, backup Jobs and their Pods, the binary
// log archive Deployment and its Pods, CronJobs and the schedules' RBAC objects) carries the
// kura.dev/cluster label.
func OwnedSelector() labels.Selector {
	req, err := labels.NewRequirement(contract.LabelCluster, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid key
	}
	return labels.NewSelector().Add(*req)
}

// CacheByObject limits the informers of core and workload kinds to the objects Kura owns
// (OwnedSelector), so the operator's memory grows with its fleet, not with the rest of the
// cluster, and the cached client never serves a Secret Kura did not create. Secrets a spec
// names (a user's credentials Secret, backup storage credentials) are read straight from the
// API server when they are needed. Kura's own kinds are cached whole.
func CacheByObject() map[client.Object]cache.ByObject {
	owned := cache.ByObject{Label: OwnedSelector()}
	out := map[client.Object]cache.ByObject{}
	for _, o := range []client.Object{
		&corev1.Pod{}, &corev1.Secret{}, &corev1.ConfigMap{}, &corev1.Service{}, &corev1.ServiceAccount{},
		&corev1.PersistentVolumeClaim{}, &appsv1.StatefulSet{}, &appsv1.Deployment{}, &policyv1.PodDisruptionBudget{},
		&batchv1.Job{}, &batchv1.CronJob{}, &rbacv1.Role{}, &rbacv1.RoleBinding{},
	} {
		out[o] = owned
	}
	return out
}

// CacheOptions are the operator's informer settings: owned objects only (CacheByObject), and
// no managedFields in memory (server-side apply makes them the largest part of most objects,
// and nothing reads them from the cache).
func CacheOptions() cache.Options {
	return cache.Options{ByObject: CacheByObject(), DefaultTransform: cache.TransformStripManagedFields()}
}
