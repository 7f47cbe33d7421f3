package kubectlkura

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

func reportCommand(connect Connector) *cobra.Command {
	var output string
	var tail int64
	cmd := &cobra.Command{
		Use:   "report <cluster>",
		Short: "Write a support bundle (objects, status history, Events, logs, configs; secrets removed) as one tar.gz",
		Long: `Collects the MySQLCluster, every object it owns, its Backups, BackupSchedules and Restores,
the status history, the namespace's Events about them, the instance and operator logs and the
rendered configuration into one tar.gz. Secret values never enter the bundle: Secrets are
listed by key only, and every value of every Secret in the namespace (and its base64 form) is
replaced by [REDACTED] wherever it appears, in logs and Events too. What could not be
collected is listed in errors.txt.`,
		Args: exactlyOneCluster,
		RunE: runE(connect, func(ctx context.Context, e *Env, args []string) error {
			c, err := e.getCluster(ctx, args[0])
			if err != nil {
				return err
			}
			if output == "" {
				output = fmt.Sprintf("kura-report-%s-%s-%s.tar.gz", c.Namespace, c.Name, e.Now().UTC().Format("20060102-150405"))
			}
			f, err := os.Create(output)
			if err != nil {
				return fmt.Errorf("failed to create %s: %w", output, err)
			}
			b, err := e.collect(ctx, c, tail)
			if err == nil {
				err = b.write(f, e.Now())
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				_ = os.Remove(output)
				return err
			}
			fmt.Fprintf(e.Out, "wrote %s: %d files, %d secret values redacted, %d items not collected (errors.txt)\n",
				output, len(b.files), len(b.redactor.values), len(b.errs))
			return nil
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default kura-report-<namespace>-<cluster>-<time>.tar.gz)")
	cmd.Flags().Int64Var(&tail, "tail", 5000, "lines of each container log to keep")
	return cmd
}

// bundleFile is one file of the bundle.
type bundleFile struct {
	name string
	data []byte
}

// bundle gathers the files of a report; every byte goes through the redactor when written.
type bundle struct {
	root     string
	files    []bundleFile
	errs     []string
	redactor *redactor
}

func (b *bundle) add(name string, data []byte) {
	b.files = append(b.files, bundleFile{name: name, data: data})
}

func (b *bundle) fail(format string, a ...any) { b.errs = append(b.errs, fmt.Sprintf(format, a...)) }

// addObject writes obj as YAML without managedFields and the last-applied annotation (which
// can hold a whole Secret).
func (b *bundle) addObject(name string, obj map[string]any) {
	u := &unstructured.Unstructured{Object: obj}
	u.SetManagedFields(nil)
	if a := u.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		u.SetAnnotations(a)
	}
	out, err := yaml.Marshal(u.Object)
	if err != nil {
		b.fail("%s: %v", name, err)
		return
	}
	b.add(name, out)
}

// write produces the tar.gz: files under one top directory, every content redacted.
func (b *bundle) write(w io.Writer, now time.Time) error {
	files := append([]bundleFile{}, b.files...)
	if len(b.errs) > 0 {
		files = append(files, bundleFile{name: "errors.txt", data: []byte(strings.Join(b.errs, "\n") + "\n")})
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		data := b.redactor.redact(f.data)
		h := &tar.Header{Name: path.Join(b.root, f.name), Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("failed to write the bundle: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("failed to write the bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("failed to write the bundle: %w", err)
	}
	return zw.Close()
}

const redacted = "[REDACTED]"

// redactor replaces secret values, raw and base64-encoded, longest first.
type redactor struct {
	values []string
	re     *regexp.Regexp
}

// minSecretLen: shorter values ("1", "true", "us-east-1"-like flags are longer) would blank out
// ordinary words; a real password or key is longer.
const minSecretLen = 6

func newRedactor(secrets []corev1.Secret) *redactor {
	seen := map[string]bool{}
	for _, s := range secrets {
		for _, v := range s.Data {
			addValue(seen, string(v))
		}
		for _, v := range s.StringData {
			addValue(seen, v)
		}
	}
	r := &redactor{}
	for v := range seen {
		r.values = append(r.values, v)
	}
	sort.Slice(r.values, func(i, j int) bool {
		if len(r.values[i]) != len(r.values[j]) {
			return len(r.values[i]) > len(r.values[j])
		}
		return r.values[i] < r.values[j]
	})
	if len(r.values) > 0 {
		quoted := make([]string, len(r.values))
		for i, v := range r.values {
			quoted[i] = regexp.QuoteMeta(v)
		}
		r.re = regexp.MustCompile(strings.Join(quoted, "|"))
	}
	return r
}

func addValue(seen map[string]bool, v string) {
	for _, line := range append([]string{v}, strings.Split(v, "\n")...) {
		line = strings.TrimSpace(line)
		if len(line) < minSecretLen {
			continue
		}
		seen[line] = true
		seen[base64.StdEncoding.EncodeToString([]byte(line))] = true
	}
}

func (r *redactor) redact(data []byte) []byte {
	if r.re == nil {
		return data
	}
	return r.re.ReplaceAll(data, []byte(redacted))
}

// sensitiveEnv names environment variables whose literal values are dropped from Pod specs.
var sensitiveEnv = regexp.MustCompile(`(?i)pass|secret|token|key|credential`)

// scrubObject removes what must never leave the cluster from an object before it is written.
func scrubObject(obj map[string]any) {
	u := &unstructured.Unstructured{Object: obj}
	if u.GetKind() == "Secret" {
		keys := map[string]any{}
		for _, field := range []string{"data", "stringData"} {
			m, _, _ := unstructured.NestedMap(obj, field)
			for k := range m {
				keys[k] = redacted
			}
			unstructured.RemoveNestedField(obj, field)
		}
		obj["redactedKeys"] = keys
		return
	}
	walkContainers(obj, func(c map[string]any) {
		env, _, _ := unstructured.NestedSlice(c, "env")
		for _, e := range env {
			em, ok := e.(map[string]any)
			if !ok {
				continue
			}
			if n, _ := em["name"].(string); sensitiveEnv.MatchString(n) {
				if _, has := em["value"]; has {
					em["value"] = redacted
				}
			}
		}
		_ = unstructured.SetNestedSlice(c, env, "env")
	})
}

// walkContainers calls f on every container of a Pod, Pod template, Job or CronJob.
func walkContainers(obj map[string]any, f func(map[string]any)) {
	for _, prefix := range [][]string{{"spec"}, {"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}} {
		for _, kind := range []string{"containers", "initContainers"} {
			cs, found, _ := unstructured.NestedSlice(obj, append(append([]string{}, prefix...), kind)...)
			if !found {
				continue
			}
			for _, c := range cs {
				if cm, ok := c.(map[string]any); ok {
					f(cm)
				}
			}
			_ = unstructured.SetNestedSlice(obj, cs, append(append([]string{}, prefix...), kind)...)
		}
	}
}

// ownedKinds are listed with the cluster's label.
var ownedKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Pod"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "PersistentVolumeClaim"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
}

// kuraKinds are listed whole and kept when spec.cluster names the cluster.
var kuraKinds = []string{"Backup", "BackupSchedule", "Restore"}

// LogFunc returns a container's log (previous: the last terminated run).
type LogFunc func(ctx context.Context, namespace, pod, container string, previous bool, tail int64) ([]byte, error)

func (e *Env) logs(ctx context.Context, namespace, pod, container string, previous bool, tail int64) ([]byte, error) {
	if e.Logs != nil {
		return e.Logs(ctx, namespace, pod, container, previous, tail)
	}
	return e.Clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, Previous: previous, TailLines: &tail, Timestamps: true,
	}).DoRaw(ctx)
}

// collect reads everything the bundle holds. Failures to read one part are recorded in
// errors.txt, not fatal: a support bundle is most needed when things are broken.
func (e *Env) collect(ctx context.Context, c *kurav1alpha1.MySQLCluster, tail int64) (*bundle, error) {
	b := &bundle{root: fmt.Sprintf("kura-report-%s-%s", c.Namespace, c.Name)}
	var secrets corev1.SecretList
	if err := e.Client.List(ctx, &secrets, client.InNamespace(c.Namespace)); err != nil {
		// Without the values nothing could be scrubbed from logs and Events: refuse.
		return nil, fmt.Errorf("failed to list the Secrets of namespace %s, needed to remove their values from the bundle: %w", c.Namespace, err)
	}
	b.redactor = newRedactor(secrets.Items)

	v, err := e.gatherStatus(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	var status bytes.Buffer
	renderStatus(&status, v)
	b.add("status.txt", status.Bytes())
	b.add("history.txt", renderHistory(c))
	b.add("README.txt", []byte(fmt.Sprintf("Kura support bundle for MySQLCluster %s/%s, written %s by kubectl-kura.\n"+
		"Secret values are replaced by %s (Secrets are listed by key in redactedKeys).\n", c.Namespace, c.Name, e.Now().UTC().Format(time.RFC3339), redacted)))

	cu, err := toMap(c)
	if err != nil {
		return nil, err
	}
	cu["apiVersion"], cu["kind"] = kurav1alpha1.GroupVersion.String(), "MySQLCluster"
	b.addObject("objects/mysqlcluster.yaml", cu)

	names := map[string]bool{c.Name: true}
	sel := client.MatchingLabels{contract.LabelCluster: c.Name}
	var pods []corev1.Pod
	for _, gvk := range ownedKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := e.Client.List(ctx, list, client.InNamespace(c.Namespace), sel); err != nil {
			b.fail("list %s: %v", gvk.Kind, err)
			continue
		}
		for _, item := range list.Items {
			names[item.GetName()] = true
			if gvk.Kind == "ConfigMap" {
				data, _, _ := unstructured.NestedStringMap(item.Object, "data")
				for k, val := range data {
					b.add(path.Join("configs", item.GetName(), k), []byte(val))
				}
			}
			if gvk.Kind == "Pod" {
				p := corev1.Pod{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &p); err != nil {
					b.fail("read Pod %s: %v", item.GetName(), err)
				} else {
					pods = append(pods, p)
				}
			}
			scrubObject(item.Object)
			b.addObject(path.Join("objects", strings.ToLower(gvk.Kind), item.GetName()+".yaml"), item.Object)
		}
	}
	for _, kind := range kuraKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(kurav1alpha1.GroupVersion.WithKind(kind + "List"))
		if err := e.Client.List(ctx, list, client.InNamespace(c.Namespace)); err != nil {
			b.fail("list %s: %v", kind, err)
			continue
		}
		for _, item := range list.Items {
			if cl, _, _ := unstructured.NestedString(item.Object, "spec", "cluster"); cl != c.Name {
				continue
			}
			names[item.GetName()] = true
			b.addObject(path.Join("objects", strings.ToLower(kind), item.GetName()+".yaml"), item.Object)
		}
	}

	b.add("events.txt", e.events(ctx, b, c, names))
	for _, p := range pods {
		e.podLogs(ctx, b, p, "logs/"+p.Name, tail)
	}
	e.operatorLogs(ctx, b, tail)
	return b, nil
}

func toMap(obj any) (map[string]any, error) {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	return out, yaml.Unmarshal(data, &out)
}

func renderHistory(c *kurav1alpha1.MySQLCluster) []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "term %d, primary %s\n", c.Status.Term, orDash(c.Status.CurrentPrimary))
	for _, h := range c.Status.History {
		fmt.Fprintf(&w, "%s term=%d %s from=%s to=%s writesPaused=%dms acknowledgedWrites=%s reason=%q\n",
			h.Time.UTC().Format(time.RFC3339), h.Term, h.Kind, orDash(h.From), h.To, h.WriteUnavailableMillis, orDash(h.AcknowledgedWrites), h.Reason)
	}
	for _, k := range c.Status.KeptAside {
		fmt.Fprintf(&w, "%s kept aside on %s: %s (%s)\n", k.Time.UTC().Format(time.RFC3339), k.Instance, k.GTIDs, k.Reason)
	}
	return w.Bytes()
}

// events lists the namespace's Events about the cluster's objects, oldest first.
func (e *Env) events(ctx context.Context, b *bundle, c *kurav1alpha1.MySQLCluster, names map[string]bool) []byte {
	var list corev1.EventList
	if err := e.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		b.fail("list Events: %v", err)
		return nil
	}
	var evs []corev1.Event
	for _, ev := range list.Items {
		if names[ev.InvolvedObject.Name] || strings.HasPrefix(ev.InvolvedObject.Name, c.Name+"-") {
			evs = append(evs, ev)
		}
	}
	when := func(ev corev1.Event) time.Time {
		for _, t := range []metav1.Time{ev.LastTimestamp, ev.FirstTimestamp} {
			if !t.IsZero() {
				return t.Time
			}
		}
		if !ev.EventTime.IsZero() {
			return ev.EventTime.Time
		}
		return ev.CreationTimestamp.Time
	}
	sort.SliceStable(evs, func(i, j int) bool { return when(evs[i]).Before(when(evs[j])) })
	var w bytes.Buffer
	for _, ev := range evs {
		fmt.Fprintf(&w, "%s %s %s/%s %s (x%d): %s\n", when(ev).UTC().Format(time.RFC3339), ev.Type,
			ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, max(ev.Count, 1), oneLine(ev.Message))
	}
	return w.Bytes()
}

func (e *Env) podLogs(ctx context.Context, b *bundle, p corev1.Pod, dir string, tail int64) {
	restarted := map[string]bool{}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		restarted[cs.Name] = cs.RestartCount > 0
	}
	for _, ctr := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		out, err := e.logs(ctx, p.Namespace, p.Name, ctr.Name, false, tail)
		if err != nil {
			b.fail("logs of %s/%s container %s: %v", p.Namespace, p.Name, ctr.Name, oneLine(err.Error()))
		} else {
			b.add(path.Join(dir, ctr.Name+".log"), out)
		}
		if restarted[ctr.Name] {
			if out, err := e.logs(ctx, p.Namespace, p.Name, ctr.Name, true, tail); err == nil {
				b.add(path.Join(dir, ctr.Name+".previous.log"), out)
			}
		}
	}
}

// operatorLogs finds the operator's Pods by the chart's labels, in any namespace.
func (e *Env) operatorLogs(ctx context.Context, b *bundle, tail int64) {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.MatchingLabels{"app.kubernetes.io/name": "kura", "app.kubernetes.io/component": "operator"}); err != nil {
		b.fail("list the operator's Pods: %v", err)
		return
	}
	if len(pods.Items) == 0 {
		b.fail("no operator Pod found (labels app.kubernetes.io/name=kura, app.kubernetes.io/component=operator)")
	}
	for _, p := range pods.Items {
		e.podLogs(ctx, b, p, "logs/operator/"+p.Namespace+"_"+p.Name, tail)
	}
}

// ReadBundle returns the files of a report written by `kubectl kura report`, by their path
// below the bundle's top directory.
func ReadBundle(r io.Reader) (map[string]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip stream: %w", err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read the bundle: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", h.Name, err)
		}
		_, rel, _ := strings.Cut(h.Name, "/")
		out[rel] = string(b)
	}
}
