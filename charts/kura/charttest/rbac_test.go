package charttest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kura-db/kura/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite charts/kura/files/rbac-rules.yaml from the generated operator role")

const (
	rulesFile        = "files/rbac-rules.yaml"
	generatedRole    = "hack/generated/role.yaml"
	generatedName    = "kura-operator"
	rulesFileComment = `# The operator's RBAC rules, generated from the +kubebuilder:rbac markers in controllers/ and
# internal/ (hack/generated/role.yaml). Do not edit by hand; refresh with
#   go test ./charts/kura/charttest -run TestRBACRulesMatchMarkers -update
# The chart grants them through a ClusterRole, or a Role per watched namespace.
`
)

// permissions expands rules into one "group resource[/name] verb" line per permission, so
// two rule lists compare by what they grant, not by how they are grouped.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						p := fmt.Sprintf("%q %s", g, res)
						if n != "" {
							p += "/" + n
						}
						out = append(out, p+" "+v)
					}
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out = append(out, "url "+u+" "+v)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diff returns what only a holds and what only b holds.
func diff(a, b []string) (onlyA, onlyB []string) {
	for _, x := range a {
		if !slices.Contains(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

// generatedRules returns the operator's rules as controller-gen produces them from the
// markers: hack/generated/role.yaml when `make generate` has written it, otherwise a fresh
// run of bin/controller-gen.
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	root := testenv.RepoRoot()
	path := filepath.Join(root, generatedRole)
	if _, err := os.Stat(path); err != nil {
		cg := filepath.Join(root, "bin", "controller-gen")
		if _, err := os.Stat(cg); err != nil {
			t.Fatalf("%s is missing and %s is not installed: run make deps (or make generate)", generatedRole, cg)
		}
		dir := t.TempDir()
		cmd := exec.Command(cg, "rbac:roleName="+generatedName, "paths=./controllers/...", "paths=./internal/...",
			"output:rbac:dir="+dir)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("failed to run controller-gen: %v\n%s", err, out)
		}
		path = filepath.Join(dir, "role.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failed to read generated role: %v", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var found *rbacv1.ClusterRole
	for {
		var cr rbacv1.ClusterRole
		if err := dec.Decode(&cr); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("failed to decode %s: %v", path, err)
		}
		switch {
		case cr.Kind == "":
			continue
		case cr.Kind == "ClusterRole" && cr.Name == generatedName:
			found = &cr
		default:
			// A marker with namespace=... makes controller-gen emit a Role: the chart has no
			// place for it, so it must be added to the chart deliberately.
			t.Fatalf("%s holds %s %s, which the chart does not grant: add it to the chart templates and to this test",
				path, cr.Kind, cr.Name)
		}
	}
	if found == nil {
		t.Fatalf("%s holds no ClusterRole %s", path, generatedName)
	}
	return found.Rules
}

func chartRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(), rulesFile))
	if err != nil {
		t.Fatalf("failed to read %s: %v", rulesFile, err)
	}
	var rules []rbacv1.PolicyRule
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("failed to parse %s: %v", rulesFile, err)
	}
	return rules
}

// TestRBACRulesMatchMarkers keeps the chart's rules equal to the rules the controllers
// declare, so the chart can never grant less (the operator fails) or more (least privilege)
// than the code asks for.
func TestRBACRulesMatchMarkers(t *testing.T) {
	want := generatedRules(t)
	if *update {
		body, err := yaml.Marshal(want)
		if err != nil {
			t.Fatalf("failed to marshal rules: %v", err)
		}
		if err := os.WriteFile(filepath.Join(chartDir(), rulesFile), append([]byte(rulesFileComment), body...), 0o644); err != nil {
			t.Fatalf("failed to write %s: %v", rulesFile, err)
		}
	}
	got := chartRules(t)
	missing, extra := diff(permissions(want), permissions(got))
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("charts/kura/%s differs from the rules generated from the RBAC markers\n"+
			"missing from the chart:\n  %s\nnot in the markers:\n  %s\n"+
			"fix: go test ./charts/kura/charttest -run TestRBACRulesMatchMarkers -update",
			rulesFile, orNone(missing), orNone(extra))
	}
	if len(want) == 0 {
		t.Fatal("the generated role has no rules: the controllers declare no RBAC markers")
	}
}

// TestRenderedRulesAreTheFile checks that the rules reach the rendered ClusterRole and every
// namespaced Role unchanged.
func TestRenderedRulesAreTheFile(t *testing.T) {
	want := permissions(chartRules(t))
	cluster := render(t, renderOpts{})
	cr := get[rbacv1.ClusterRole](t, cluster, "ClusterRole", "", "kura")
	if got := permissions(cr.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole kura grants\n%v\nwant\n%v", got, want)
	}
	ns := render(t, renderOpts{}, "watchNamespaces={team-a,team-b}")
	for _, n := range []string{"team-a", "team-b"} {
		role := get[rbacv1.Role](t, ns, "Role", n, "kura")
		if got := permissions(role.Rules); !slices.Equal(got, want) {
			t.Errorf("Role %s/kura grants\n%v\nwant\n%v", n, got, want)
		}
	}
}

func orNone(perms []string) string {
	if len(perms) == 0 {
		return "(none)"
	}
	return strings.Join(perms, "\n  ")
}
