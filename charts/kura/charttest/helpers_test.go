package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kura-db/kura/internal/testenv"
)

const (
	releaseName       = "kura"
	releaseNamespace  = "kura-system"
	serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"
)

// kubeVersion is the Kubernetes version the tests render for: the one matching
// k8s.io/apimachinery in go.mod (v0.X.Y is Kubernetes v1.X.Y), which is also the version of the
// envtest kube-apiserver built from the same module.
func kubeVersion() (*common.KubeVersion, error) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("failed to read go.mod: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "k8s.io/apimachinery" && strings.HasPrefix(f[1], "v0.") {
			kv, err := common.ParseKubeVersion("v1." + strings.TrimPrefix(f[1], "v0."))
			if err != nil {
				return nil, fmt.Errorf("failed to parse Kubernetes version: %w", err)
			}
			return kv, nil
		}
	}
	return nil, errors.New("failed to find k8s.io/apimachinery in go.mod")
}

// chartDir is the chart under test.
func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "kura") }

// renderOpts selects what the simulated cluster serves.
type renderOpts struct {
	apiVersions []string
	namespace   string // the release namespace; default releaseNamespace
}

// rendered is one client-side install of the chart.
type rendered struct {
	objects  []*unstructured.Unstructured
	notes    string
	manifest string
}

// values builds a values map from helm --set expressions.
func values(t testing.TB, sets ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("failed to parse --set %q: %v", s, err)
		}
	}
	return vals
}

// renderChart runs a client-only dry-run install, as `helm install --dry-run=client` does.
func renderChart(vals map[string]any, o renderOpts) (*rendered, error) {
	ch, err := loader.Load(chartDir())
	if err != nil {
		return nil, fmt.Errorf("failed to load chart: %w", err)
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = releaseName
	inst.Namespace = releaseNamespace
	if o.namespace != "" {
		inst.Namespace = o.namespace
	}
	inst.APIVersions = common.VersionSet(o.apiVersions)
	kv, err := kubeVersion()
	if err != nil {
		return nil, err
	}
	inst.KubeVersion = kv
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", rel)
	}
	objs, err := decodeManifest(r.Manifest)
	if err != nil {
		return nil, err
	}
	return &rendered{objects: objs, notes: r.Info.Notes, manifest: r.Manifest}, nil
}

func render(t testing.TB, o renderOpts, sets ...string) *rendered {
	t.Helper()
	r, err := renderChart(values(t, sets...), o)
	if err != nil {
		t.Fatalf("failed to render chart with %q: %v", sets, err)
	}
	return r
}

func decodeManifest(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("failed to decode manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// key names an object as Kind/namespace/name.
func key(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

func (r *rendered) keys() []string {
	var ks []string
	for _, u := range r.objects {
		ks = append(ks, key(u))
	}
	slices.Sort(ks)
	return ks
}

func (r *rendered) find(kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range r.objects {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return u
		}
	}
	return nil
}

// get converts the named object to its typed form, failing the test when it is missing.
func get[T any](t testing.TB, r *rendered, kind, namespace, name string) *T {
	t.Helper()
	u := r.find(kind, namespace, name)
	if u == nil {
		t.Fatalf("%s %s/%s not rendered; rendered: %v", kind, namespace, name, r.keys())
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("failed to convert %s: %v", key(u), err)
	}
	return out
}

// sampleCluster extracts the MySQLCluster that NOTES.txt tells the user to apply (the text
// of its `kubectl apply -f - <<'YAML'` here-document).
func sampleCluster(notes string) (*unstructured.Unstructured, error) {
	const open, end = "<<'YAML'\n", "\nYAML\n"
	i := strings.Index(notes, open)
	if i < 0 {
		return nil, errors.New("NOTES hold no here-document with a sample")
	}
	body := notes[i+len(open):]
	j := strings.Index(body, end)
	if j < 0 {
		return nil, errors.New("the sample's here-document in NOTES is not closed by a line YAML")
	}
	objs, err := decodeManifest(body[:j])
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 || objs[0].GetKind() != "MySQLCluster" {
		return nil, fmt.Errorf("the sample in NOTES is %d objects, want one MySQLCluster", len(objs))
	}
	return objs[0], nil
}
