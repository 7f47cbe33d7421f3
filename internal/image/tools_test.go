package image

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kura-db/kura/internal/testenv"
)

// command runs name args in the repository root and returns its trimmed stdout.
func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// ociConfig is the part of an OCI image config (and of umoci's runtime config) the test reads.
type ociConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", got, len(a), want, len(b))
	}
}

// TestMakeImage builds the image with `make image` and opens it with the tools others use:
// skopeo (the library podman and CRI-O load images with), umoci, and a registry on loopback.
func TestMakeImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kura binary and the image (about 30 s)")
	}
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make image-deps` (hack/image-tools.sh)", tool)
		}
	}
	root := testenv.RepoRoot()
	version := command(t, "make", "-s", "print-version")
	ref := command(t, "make", "-s", "print-image")
	if version == "" || !strings.HasSuffix(ref, ":"+version) {
		t.Fatalf("make print-version = %q, print-image = %q", version, ref)
	}
	tmp := t.TempDir()
	out := filepath.Join(tmp, "one")
	start := time.Now()
	t.Log(command(t, "make", "-s", "image", "IMAGE_DIR="+out))
	t.Logf("make image took %s", time.Since(start).Round(100*time.Millisecond))
	built := filepath.Join(root, "bin", "kura")
	digest := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(out, "digest")))))
	layoutRef := "oci:" + filepath.Join(out, "oci") + ":" + ref
	archive := "docker-archive:" + filepath.Join(out, "kura.tar")

	t.Run("same input gives the same digest", func(t *testing.T) {
		again := filepath.Join(tmp, "two")
		command(t, "make", "-s", "image", "IMAGE_DIR="+again)
		sameFile(t, filepath.Join(again, "digest"), filepath.Join(out, "digest"))
		sameFile(t, filepath.Join(again, "kura.tar"), filepath.Join(out, "kura.tar"))
	})

	t.Run("skopeo reads the OCI layout and the archive", func(t *testing.T) {
		var inspect struct{ Digest string }
		if err := json.Unmarshal([]byte(command(t, "skopeo", "inspect", layoutRef)), &inspect); err != nil {
			t.Fatal(err)
		}
		if inspect.Digest != digest {
			t.Errorf("skopeo sees %s in the layout, make image wrote %s", inspect.Digest, digest)
		}
		head := command(t, "git", "rev-parse", "HEAD")
		for _, src := range []string{layoutRef, archive} {
			var cfg ociConfig
			if err := json.Unmarshal([]byte(command(t, "skopeo", "inspect", "--config", src)), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture != runtime.GOARCH || cfg.OS != "linux" {
				t.Errorf("%s: platform %s/%s, want linux/%s", src, cfg.OS, cfg.Architecture, runtime.GOARCH)
			}
			if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/kura"}) {
				t.Errorf("%s: user %q entrypoint %q, want 65532:65532 and [/kura]", src, cfg.Config.User, cfg.Config.Entrypoint)
			}
			l := cfg.Config.Labels
			if l[AnnotationVersion] != version || !strings.HasPrefix(l[AnnotationRevision], head) || l[AnnotationSource] == "" {
				t.Errorf("%s: labels %v, want version %s and revision %s", src, l, version, head)
			}
		}
	})

	t.Run("umoci unpacks the binary that was built", func(t *testing.T) {
		bundle := filepath.Join(tmp, "bundle")
		command(t, "umoci", "unpack", "--rootless", "--image", filepath.Join(out, "oci")+":"+ref, bundle)
		sameFile(t, filepath.Join(bundle, "rootfs", "kura"), built)
		var spec struct {
			Process struct {
				User struct{ UID, GID int }
				Args []string
			}
		}
		if err := json.Unmarshal(must(os.ReadFile(filepath.Join(bundle, "config.json"))), &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Process.User.UID != 65532 || spec.Process.User.GID != 65532 || !slices.Equal(spec.Process.Args, []string{"/kura"}) {
			t.Errorf("runtime config: user %+v args %q", spec.Process.User, spec.Process.Args)
		}
		if got := command(t, filepath.Join(bundle, "rootfs", "kura"), "version"); got != version {
			t.Errorf("the image's /kura reports version %q, the chart deploys %q", got, version)
		}
	})

	t.Run("the archive loads into container storage as podman load does", func(t *testing.T) {
		store := filepath.Join(tmp, "storage")
		dest := "containers-storage:[vfs@" + store + "/root+" + store + "/run]" + ref
		command(t, "skopeo", "copy", "--quiet", archive, dest)
		found, _ := filepath.Glob(filepath.Join(store, "root", "vfs", "dir", "*", "kura"))
		if len(found) != 1 {
			t.Fatalf("found %v in the storage, want one /kura", found)
		}
		sameFile(t, found[0], built)
	})

	t.Run("pushes to a registry and pulls back", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		viaSkopeo, viaMake := host+"/kura:"+version, host+"/pushed/kura:"+version
		command(t, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", layoutRef, "docker://"+viaSkopeo)
		command(t, "make", "-s", "image-push", "IMAGE="+viaMake, "IMAGE_DIR="+out)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, r := range []string{viaSkopeo, viaMake} {
			var inspect struct{ Digest string }
			if err := json.Unmarshal([]byte(command(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+r)), &inspect); err != nil {
				t.Fatal(err)
			}
			if inspect.Digest != digest {
				t.Errorf("registry holds %s as %s, make image wrote %s", r, inspect.Digest, digest)
			}
			img, err := Pull(ctx, r, false)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fileContent(t, img, "kura"), must(os.ReadFile(built))) {
				t.Errorf("/kura pulled from %s differs from bin/kura", r)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
