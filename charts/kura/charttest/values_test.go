package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"

	"github.com/kura-db/kura/internal/testenv"
)

// schemaNode is the part of values.schema.json the tests walk.
type schemaNode struct {
	Properties map[string]*schemaNode `json:"properties"`
}

// value is one leaf of values.yaml: a value a user sets as a whole.
type value struct {
	path string
	key  *yaml.Node
}

// leafValues walks values.yaml alongside values.schema.json. A key whose schema lists
// properties is a group and is walked into; any other key is a value. A key the schema does
// not know fails the test.
func leafValues(t *testing.T) []value {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(), "values.schema.json"))
	if err != nil {
		t.Fatalf("failed to read values.schema.json: %v", err)
	}
	var schema schemaNode
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("failed to parse values.schema.json: %v", err)
	}
	data, err = os.ReadFile(filepath.Join(chartDir(), "values.yaml"))
	if err != nil {
		t.Fatalf("failed to read values.yaml: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("failed to parse values.yaml: %v", err)
	}
	var out []value
	var walk func(prefix string, m *yaml.Node, s *schemaNode)
	walk = func(prefix string, m *yaml.Node, s *schemaNode) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			path := prefix + k.Value
			sub := s.Properties[k.Value]
			switch {
			case sub == nil:
				t.Errorf("values.yaml key %s is not in values.schema.json", path)
			case len(sub.Properties) > 0 && v.Kind == yaml.MappingNode:
				walk(path+".", v, sub)
			default:
				out = append(out, value{path: path, key: k})
			}
		}
	}
	walk("", doc.Content[0], &schema)
	if len(out) == 0 {
		t.Fatal("values.yaml holds no values")
	}
	return out
}

// Every value has a "# --" comment in values.yaml and a row in docs/helm.md.
func TestEveryValueDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "helm.md"))
	if err != nil {
		t.Fatalf("failed to read docs/helm.md: %v", err)
	}
	for _, v := range leafValues(t) {
		if !strings.Contains(v.key.HeadComment, "# -- ") {
			t.Errorf("values.yaml: %s has no '# -- ' comment above it", v.path)
		}
		if !strings.Contains(string(doc), "| `"+v.path+"` |") {
			t.Errorf("docs/helm.md has no table row for `%s`", v.path)
		}
	}
}

// Every value has a case in the options table, so each is rendered and checked.
func TestEveryValueHasAnOptionCase(t *testing.T) {
	var covered []string
	for _, o := range options {
		covered = append(covered, o.value)
	}
	var all []string
	for _, v := range leafValues(t) {
		all = append(all, v.path)
		if !slices.Contains(covered, v.path) {
			t.Errorf("value %s has no case in options", v.path)
		}
	}
	for _, c := range covered {
		if !slices.Contains(all, c) {
			t.Errorf("options case %s names no value of values.yaml", c)
		}
	}
}

// badValues are refused by the schema or the templates, each with a message naming the value.
var badValues = []struct {
	name string
	sets []string
	want []string // substrings of the error
}{
	{"replicaCount not a number", []string{"replicaCount=three"}, []string{"replicaCount", "integer"}},
	{"replicaCount zero", []string{"replicaCount=0"}, []string{"replicaCount", "minimum"}},
	{"unknown log level", []string{"logLevel=verbose"}, []string{"logLevel", "debug", "info", "error"}},
	{"interval not a duration", []string{"clusteringInterval=soon"}, []string{"clusteringInterval", "does not match pattern"}},
	{"namespace not a DNS label", []string{"watchNamespaces={Team_A}"}, []string{"watchNamespaces/0", "does not match pattern"}},
	{"duplicate namespace", []string{"watchNamespaces={a,a}"}, []string{"watchNamespaces", "are equal"}},
	{"misspelt key", []string{"replicas=2"}, []string{"replicas", "additional properties"}},
	{"misspelt nested key", []string{"image.tags=dev"}, []string{"image", "tags"}},
	{"bad pull policy", []string{"image.pullPolicy=Sometimes"}, []string{"image/pullPolicy", "Always"}},
	{"bad digest", []string{"image.digest=latest"}, []string{"image/digest", "does not match pattern"}},
	{"port out of range", []string{"metrics.service.port=70000"}, []string{"metrics/service/port", "maximum"}},
	{"extra arg not a flag", []string{"extraArgs={verbose}"}, []string{"extraArgs/0", "does not match pattern"}},
	{"no service account", []string{"serviceAccount.create=false"}, []string{"serviceAccount/name", "minLength"}},
}

func TestBadValuesRefused(t *testing.T) {
	for _, bv := range badValues {
		t.Run(bv.name, func(t *testing.T) {
			_, err := renderChart(values(t, bv.sets...), renderOpts{})
			if err == nil {
				t.Fatalf("install with %q succeeded, want it refused", bv.sets)
			}
			for _, w := range bv.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("install error does not mention %q:\n%v", w, err)
				}
			}

			res := lintChart(t, values(t, bv.sets...))
			msgs := lintErrors(res)
			if len(msgs) == 0 {
				t.Fatalf("lint with %q passed, want an error", bv.sets)
			}
			if joined := strings.Join(msgs, "\n"); !strings.Contains(joined, bv.want[0]) {
				t.Errorf("lint errors do not mention %q:\n%s", bv.want[0], joined)
			}
		})
	}
}

func lintChart(t *testing.T, vals map[string]any) *action.LintResult {
	t.Helper()
	kv, err := kubeVersion()
	if err != nil {
		t.Fatal(err)
	}
	l := action.NewLint()
	l.Strict = true
	l.Namespace = releaseNamespace
	l.KubeVersion = kv
	return l.Run([]string{chartDir()}, vals)
}

// lintErrors returns every lint message at warning severity or above, and every error.
func lintErrors(res *action.LintResult) []string {
	var out []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m.Error())
		}
	}
	for _, e := range res.Errors {
		out = append(out, e.Error())
	}
	return out
}

// Strict lint, in-process, with the default values and with the namespaced mode. Info
// messages are logged; anything at warning or above fails. The one info message expected is
// "icon is recommended": the chart names no icon, as it links to no external host.
func TestLintStrict(t *testing.T) {
	for name, sets := range map[string][]string{
		"defaults":   nil,
		"namespaced": {"watchNamespaces={team-a,team-b}"},
		"no rbac":    {"rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=kura-op"},
		"everything": {"replicaCount=2", "metrics.serviceMonitor.enabled=true", "image.digest=" + testDigest,
			"imagePullSecrets[0].name=regcred", "priorityClassName=high", "extraArgs={--x=y}"},
	} {
		t.Run(name, func(t *testing.T) {
			res := lintChart(t, values(t, sets...))
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			for _, m := range res.Messages {
				t.Logf("lint: %s", m.Error())
			}
			if errs := lintErrors(res); len(errs) > 0 {
				t.Errorf("lint failed:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}
