package charttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/loader"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/kura-db/kura/internal/testenv"
)

func makeVar(t *testing.T, target string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "--no-print-directory", target)
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestVersionsAgree checks that one version runs everywhere: the chart's appVersion is what
// the Makefile stamps into the binary (-X main.version) and tags `make image` with, the
// Dockerfile's default, the chart's default image, and the --kura-image the operator hands to
// database Pods. (The image test checks that the binary inside `make image` reports it.)
func TestVersionsAgree(t *testing.T) {
	loaded, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := loaded.(*chartv2.Chart)
	if !ok {
		t.Fatalf("unexpected chart type %T", loaded)
	}
	app := ch.Metadata.AppVersion
	if app == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	imageVals, _ := ch.Values["image"].(map[string]any)
	repo, _ := imageVals["repository"].(string)
	if tag, _ := imageVals["tag"].(string); tag != "" {
		t.Errorf("values.yaml image.tag = %q: leave it empty so the tag follows appVersion", tag)
	}
	want := repo + ":" + app

	if v := makeVar(t, "print-version"); v != app {
		t.Errorf("the Makefile stamps version %q into the binary and the image, the chart's appVersion is %q", v, app)
	}
	if img := makeVar(t, "print-image"); img != want {
		t.Errorf("make image names the image %q, the chart deploys %q", img, want)
	}

	dockerfile, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := regexp.MustCompile(`(?m)^ARG VERSION=(\S+)$`).FindAllStringSubmatch(string(dockerfile), -1)
	if len(args) == 0 {
		t.Error("the Dockerfile has no ARG VERSION=<default>")
	}
	for _, a := range args {
		if a[1] != app {
			t.Errorf("the Dockerfile's ARG VERSION defaults to %q, the chart's appVersion is %q", a[1], app)
		}
	}

	_, c := operator(t, render(t, renderOpts{}))
	if c.Image != want {
		t.Errorf("the operator runs image %q, want %q", c.Image, want)
	}
	found := false
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--kura-image="); ok {
			found = true
			if v != c.Image {
				t.Errorf("--kura-image=%s differs from the operator's own image %s: database Pods would run another build", v, c.Image)
			}
		}
	}
	if !found {
		t.Errorf("the operator has no --kura-image argument: %q", c.Args)
	}
}
