package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fileData struct {
	data []byte
	mode os.FileMode
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return def
}

// renderVolume computes a rendered volume's files and writes them atomically when changed.
func (w *podWorker) renderVolume(pod *corev1.Pod, v corev1.Volume, dir string, fsGroup *int64) error {
	files := map[string]fileData{}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = w.addConfigMap(pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, modeOr(v.ConfigMap.DefaultMode, 0o644), files)
	case v.Secret != nil:
		err = w.addSecret(pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, modeOr(v.Secret.DefaultMode, 0o644), files)
	case v.DownwardAPI != nil:
		err = w.addDownward(pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode, 0o644), files)
	case v.Projected != nil:
		def := modeOr(v.Projected.DefaultMode, 0o644)
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				err = w.addConfigMap(pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, def, files)
			case src.Secret != nil:
				err = w.addSecret(pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, def, files)
			case src.DownwardAPI != nil:
				err = w.addDownward(pod, src.DownwardAPI.Items, def, files)
			case src.ServiceAccountToken != nil:
				var tok string
				tok, err = w.token(pod, src.ServiceAccountToken)
				files[src.ServiceAccountToken.Path] = fileData{data: []byte(tok), mode: def}
			default:
				err = fmt.Errorf("projected source of volume %q is not supported", v.Name)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("failed to render volume %q: %w", v.Name, err)
	}
	if _, err := writeAtomic(dir, files, fsGroup); err != nil {
		return fmt.Errorf("failed to write volume %q: %w", v.Name, err)
	}
	return nil
}

func addItems(data map[string][]byte, items []corev1.KeyToPath, def os.FileMode, files map[string]fileData, what string) error {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = fileData{data: v, mode: def}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found in %s", it.Key, what)
		}
		files[it.Path] = fileData{data: v, mode: modeOr(it.Mode, def)}
	}
	return nil
}

func (w *podWorker) addConfigMap(ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, files map[string]fileData) error {
	cm, err := w.a.configMap.ConfigMaps(ns).Get(name)
	if err != nil {
		if optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("configmap %q not found", name)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return addItems(data, items, def, files, "configmap "+name)
}

func (w *podWorker) addSecret(ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, files map[string]fileData) error {
	s, err := w.a.secrets.Secrets(ns).Get(name)
	if err != nil {
		if optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("secret %q not found", name)
	}
	return addItems(s.Data, items, def, files, "secret "+name)
}

func (w *podWorker) addDownward(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def os.FileMode, files map[string]fileData) error {
	w.mu.Lock()
	ip := ""
	if w.sb != nil {
		ip = w.sb.ip
	}
	w.mu.Unlock()
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			switch it.FieldRef.FieldPath {
			case "metadata.labels":
				v = formatMapLines(pod.Labels)
			case "metadata.annotations":
				v = formatMapLines(pod.Annotations)
			default:
				v, err = fieldValue(pod, it.FieldRef.FieldPath, ip)
			}
		case it.ResourceFieldRef != nil:
			c := &pod.Spec.Containers[0]
			v, err = resourceValue(pod, c, it.ResourceFieldRef)
		}
		if err != nil {
			return err
		}
		files[it.Path] = fileData{data: []byte(v), mode: modeOr(it.Mode, def)}
	}
	return nil
}

func formatMapLines(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// tokenCache holds service-account tokens until 80% of their lifetime has passed.
type tokenCache struct {
	mu     sync.Mutex
	tokens map[string]cachedToken
}

type cachedToken struct {
	token   string
	refresh time.Time
}

func newTokenCache() *tokenCache { return &tokenCache{tokens: map[string]cachedToken{}} }

func (w *podWorker) token(pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	key := fmt.Sprintf("%s|%d", src.Audience, exp)
	w.tokens.mu.Lock()
	defer w.tokens.mu.Unlock()
	if t, ok := w.tokens.tokens[key]; ok && time.Now().Before(t.refresh) {
		return t.token, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to request token of service account %q: %w", sa, err)
	}
	life := time.Until(resp.Status.ExpirationTimestamp.Time)
	w.tokens.tokens[key] = cachedToken{token: resp.Status.Token, refresh: time.Now().Add(life * 8 / 10)}
	return resp.Status.Token, nil
}

// writeAtomic publishes files under dir the way the kubelet does: the data lives in a
// timestamped directory, "..data" points at it, and each top-level name is a symlink through
// "..data", so readers never see a half-written update. It reports whether anything changed.
func writeAtomic(dir string, files map[string]fileData, fsGroup *int64) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if unchanged(dir, files) {
		return false, nil
	}
	ts := "..data-" + time.Now().Format("2006_01_02_15_04_05.000000000")
	tsDir := filepath.Join(dir, ts)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return false, err
	}
	gid := -1
	if fsGroup != nil {
		gid = int(*fsGroup)
	}
	tops := map[string]bool{}
	for rel, f := range files {
		if strings.Contains(rel, "..") || filepath.IsAbs(rel) {
			return false, fmt.Errorf("invalid path %q", rel)
		}
		p := filepath.Join(tsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return false, err
		}
		mode := f.mode
		if gid >= 0 {
			if err := os.Chown(p, -1, gid); err != nil {
				return false, err
			}
			mode |= 0o040
		}
		if err := os.Chmod(p, mode); err != nil {
			return false, err
		}
		tops[strings.SplitN(rel, "/", 2)[0]] = true
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return false, err
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			continue
		}
		if !tops[name] {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	for top := range tops {
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			return false, err
		}
	}
	if old != "" && old != ts {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return true, nil
}

func unchanged(dir string, files map[string]fileData) bool {
	data := filepath.Join(dir, "..data")
	if _, err := os.Stat(data); err != nil {
		return false
	}
	count := 0
	err := filepath.Walk(data+"/", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		count++
		rel, _ := filepath.Rel(data, p)
		f, ok := files[rel]
		if !ok {
			return fmt.Errorf("extra file")
		}
		cur, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(cur, f.data) {
			return fmt.Errorf("changed")
		}
		return nil
	})
	return err == nil && count == len(files)
}
