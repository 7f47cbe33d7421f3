package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// prepareVolumes gives every Pod volume a host directory: emptyDirs under the Pod dir, PVCs
// through their bound PersistentVolume, hostPath as is, and ConfigMap, Secret, projected and
// downward-API volumes rendered from the API objects.
func (w *podWorker) prepareVolumes(pod *corev1.Pod) error {
	vols := map[string]string{}
	var fsGroup *int64
	if pod.Spec.SecurityContext != nil {
		fsGroup = pod.Spec.SecurityContext.FSGroup
	}
	for _, v := range pod.Spec.Volumes {
		dir := w.dir("volumes", v.Name)
		switch {
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return fmt.Errorf("failed to create emptyDir %s: %w", v.Name, err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				return fmt.Errorf("failed to chmod emptyDir %s: %w", v.Name, err)
			}
			if err := applyFSGroup(dir, fsGroup); err != nil {
				return err
			}
		case v.HostPath != nil:
			dir = v.HostPath.Path
			if v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("failed to create hostPath %s: %w", dir, err)
				}
			}
		case v.PersistentVolumeClaim != nil:
			p, err := w.a.claimPath(pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			if err != nil {
				return err
			}
			dir = p
			if err := applyFSGroup(dir, fsGroup); err != nil {
				return err
			}
		case v.ConfigMap != nil, v.Secret != nil, v.Projected != nil, v.DownwardAPI != nil:
			if err := w.renderVolume(pod, v, dir, fsGroup); err != nil {
				return err
			}
		default:
			return fmt.Errorf("volume %q has a type the local cluster does not support", v.Name)
		}
		vols[v.Name] = dir
	}
	w.volumes = vols
	return nil
}

// claimPath returns the directory of the PersistentVolume bound to a claim.
func (a *Agent) claimPath(ns, claim string) (string, error) {
	pvc, err := a.pvcs.PersistentVolumeClaims(ns).Get(claim)
	if err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q not found", claim)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound yet", claim)
	}
	pv, err := a.pvs.Get(pvc.Spec.VolumeName)
	if err != nil {
		return "", fmt.Errorf("persistentvolume %q not found", pvc.Spec.VolumeName)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q is neither hostPath nor local", pv.Name)
}

// applyFSGroup gives the group fsGroup ownership and rw access to everything under dir, and
// sets the setgid bit on directories so new files inherit the group.
func applyFSGroup(dir string, fsGroup *int64) error {
	if fsGroup == nil {
		return nil
	}
	gid := int(*fsGroup)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		mode := info.Mode().Perm() | 0o060
		if info.IsDir() {
			mode |= 0o010 | os.ModeSetgid
		}
		return os.Chmod(p, mode|info.Mode()&os.ModeSticky)
	})
	if err != nil {
		return fmt.Errorf("failed to apply fsGroup %d to %s: %w", gid, dir, err)
	}
	return nil
}

// refreshVolumes re-renders ConfigMap, Secret, projected and downward-API volumes every two
// seconds, so updates of the API objects reach running containers.
func (w *podWorker) refreshVolumes(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pod := w.latest()
		var fsGroup *int64
		if pod.Spec.SecurityContext != nil {
			fsGroup = pod.Spec.SecurityContext.FSGroup
		}
		for _, v := range pod.Spec.Volumes {
			if v.ConfigMap == nil && v.Secret == nil && v.Projected == nil && v.DownwardAPI == nil {
				continue
			}
			if err := w.renderVolume(pod, v, w.dir("volumes", v.Name), fsGroup); err != nil {
				w.logf("refresh volume %s: %v", v.Name, err)
			}
		}
	}
}
