package kubectlkura

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kura-db/kura/internal/testenv"
)

// krewPlugin mirrors krew's v1alpha2 Plugin manifest. Krew's own validation lives in an
// internal package of sigs.k8s.io/krew (not importable), and that module requires
// k8s.io/client-go v11.0.0+incompatible, which would replace client-go v0.37 in this module's
// graph; so its documented rules are checked here, on a strict decoding that refuses unknown
// fields.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Caveats          string `json:"caveats,omitempty"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

var (
	krewName    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	krewVersion = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func validateKrew(path string) []string {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return []string{"not a krew Plugin manifest: " + err.Error()}
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" {
		fail("apiVersion/kind %s/%s, want krew.googlecontainertools.github.com/v1alpha2 Plugin", p.APIVersion, p.Kind)
	}
	if !krewName.MatchString(p.Metadata.Name) || p.Metadata.Name+".yaml" != filepath.Base(path) {
		fail("metadata.name %q must be a lowercase name equal to the file name", p.Metadata.Name)
	}
	if !krewVersion.MatchString(p.Spec.Version) {
		fail("spec.version %q is not a semantic version with a leading v", p.Spec.Version)
	}
	if p.Spec.ShortDescription == "" || len(p.Spec.ShortDescription) > 50 || p.Spec.Description == "" {
		fail("shortDescription (at most 50 characters) and description are required")
	}
	if !strings.HasPrefix(p.Spec.Homepage, "https://") {
		fail("homepage %q must be an https URL", p.Spec.Homepage)
	}
	if len(p.Spec.Platforms) == 0 {
		fail("no platforms")
	}
	seen := map[string]bool{}
	for i, pl := range p.Spec.Platforms {
		os, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
		key := os + "/" + arch
		if os == "" || arch == "" || seen[key] {
			fail("platform %d: selector %v must name a distinct os and arch", i, pl.Selector.MatchLabels)
		}
		seen[key] = true
		if !strings.HasPrefix(pl.URI, "https://") || !strings.Contains(pl.URI, "/"+p.Spec.Version+"/") || !strings.Contains(pl.URI, "_"+os+"_"+arch+".tar.gz") {
			fail("platform %s: uri %q must be the https release asset of %s for this platform", key, pl.URI, p.Spec.Version)
		}
		if !sha256Hex.MatchString(pl.SHA256) {
			fail("platform %s: sha256 %q is not 64 lowercase hex digits", key, pl.SHA256)
		}
		bin := "kubectl-kura"
		if os == "windows" {
			bin += ".exe"
		}
		if pl.Bin != bin {
			fail("platform %s: bin %q, want %q", key, pl.Bin, bin)
		}
		shipped := false
		for _, f := range pl.Files {
			shipped = shipped || f.From == bin
		}
		if !shipped {
			fail("platform %s: files do not copy %s out of the archive", key, bin)
		}
	}
	return errs
}

func TestKrewManifest(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(), "plugins", "kura.yaml")
	for _, e := range validateKrew(path) {
		t.Error(e)
	}
	// The plugin's version is the project's.
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "kura", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(path)
	if !strings.Contains(string(manifest), `version: "v`+chart.AppVersion+`"`) {
		t.Errorf("plugins/kura.yaml is not at version v%s (the chart's appVersion): run make plugin-dist", chart.AppVersion)
	}
}

func TestKrewValidationCatchesMistakes(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "plugins", "kura.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for what, mutate := range map[string]func(string) string{
		"an unknown field": func(s string) string { return strings.Replace(s, "  homepage:", "  homepag: x\n  homepage:", 1) },
		"a bad version":    func(s string) string { return strings.Replace(s, `version: "v`, `version: "`, 1) },
		"a short sha256":   func(s string) string { return strings.Replace(s, `sha256: "`, `sha256: "ab`, 1) },
		"another bin":      func(s string) string { return strings.Replace(s, "bin: kubectl-kura", "bin: kura", 1) },
	} {
		p := filepath.Join(t.TempDir(), "kura.yaml")
		if err := os.WriteFile(p, []byte(mutate(string(good))), 0o644); err != nil {
			t.Fatal(err)
		}
		if errs := validateKrew(p); len(errs) == 0 {
			t.Errorf("a manifest with %s passed", what)
		}
	}
}
