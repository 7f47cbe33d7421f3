// Package apply writes owned objects with server-side apply under one field owner, skipping the
// write when the object already carries the hash of the desired state.
package apply

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/contract"
)

// Object applies obj (a typed object with TypeMeta set and, ideally, an applied-hash
// annotation) with server-side apply and forced ownership. When the live object carries the
// same applied hash, nothing is written. It reports whether a write happened.
func Object(ctx context.Context, c client.Client, obj client.Object, owner string) (bool, error) {
	want := obj.GetAnnotations()[contract.AnnotationAppliedHash]
	if want != "" {
		// A typed object, so the read is served by the manager's cache (an unstructured one
		// would go to the API server on every reconcile).
		live := liveObject(c, obj)
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), live)
		switch {
		case err == nil && live.GetAnnotations()[contract.AnnotationAppliedHash] == want && live.GetDeletionTimestamp() == nil:
			return false, nil
		case err != nil && !apierrors.IsNotFound(err):
			return false, fmt.Errorf("failed to get %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	}
	u, err := ToUnstructured(obj)
	if err != nil {
		return false, err
	}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("failed to apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return true, nil
}

// liveObject returns an empty object of obj's kind: typed when the scheme knows the kind.
func liveObject(c client.Client, obj client.Object) client.Object {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if o, err := c.Scheme().New(gvk); err == nil {
		if co, ok := o.(client.Object); ok {
			return co
		}
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	return live
}

// Status applies only the given status fields of obj (a Kura object) under owner, leaving
// fields owned by other writers alone. Each writer owns its own conditions by type.
func Status(ctx context.Context, c client.Client, obj client.Object, status any, owner string) error {
	return applyStatus(ctx, c, obj, status, owner, "")
}

// StatusIfUnchanged is Status with a precondition: the object must still be at obj's
// resourceVersion, or the API server refuses the write with a conflict (a compare-and-swap).
func StatusIfUnchanged(ctx context.Context, c client.Client, obj client.Object, status any, owner string) error {
	if obj.GetResourceVersion() == "" {
		return fmt.Errorf("failed to apply status of %s: no resourceVersion to compare with", obj.GetName())
	}
	return applyStatus(ctx, c, obj, status, owner, obj.GetResourceVersion())
}

func applyStatus(ctx context.Context, c client.Client, obj client.Object, status any, owner, resourceVersion string) error {
	raw, err := json.Marshal(status)
	if err != nil {
		return fmt.Errorf("failed to convert status: %w", err)
	}
	st := map[string]any{}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("failed to convert status: %w", err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		gvks, _, err := c.Scheme().ObjectKinds(obj)
		if err != nil || len(gvks) == 0 {
			return fmt.Errorf("failed to find the kind of %T: %w", obj, err)
		}
		gvk = gvks[0]
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetGroupVersionKind(gvk)
	u.SetName(obj.GetName())
	u.SetNamespace(obj.GetNamespace())
	u.SetResourceVersion(resourceVersion)
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply status of %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}

// ToUnstructured converts a typed object, keeping its TypeMeta.
func ToUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("failed to convert %T: %w", obj, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
