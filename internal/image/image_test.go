package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeBinary writes size random bytes: Build treats the binary as opaque data.
func fakeBinary(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kura")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func testOptions(bin string) Options {
	return Options{
		Binary: bin, Version: "1.2.3", Revision: "0123abcd", Source: "https://github.com/kura-db/kura",
		Created: time.Unix(1700000000, 0), Architecture: "amd64",
	}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// files returns the image's file system: path → (mode, content).
func files(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func fileContent(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", path, err)
		}
		if h.Name == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	bin, data := fakeBinary(t, 3<<20)
	o := testOptions(bin)
	a, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Fatalf("two builds of the same inputs differ: %s and %s", da, db)
	}

	// Every input shows in the digest.
	changed := map[string]Options{}
	o2 := o
	o2.Version = "1.2.4"
	changed["version"] = o2
	o2 = o
	o2.Revision = "fedc"
	changed["revision"] = o2
	o2 = o
	o2.Created = o.Created.Add(time.Second)
	changed["created"] = o2
	o2 = o
	o2.Architecture = "arm64"
	changed["architecture"] = o2
	data[len(data)/2] ^= 1
	other := filepath.Join(t.TempDir(), "kura")
	if err := os.WriteFile(other, data, 0o755); err != nil {
		t.Fatal(err)
	}
	o2 = o
	o2.Binary = other
	changed["one bit of the binary"] = o2
	for what, o2 := range changed {
		c, err := Build(o2)
		if err != nil {
			t.Fatal(err)
		}
		if digest(t, c) == digest(t, a) {
			t.Errorf("changing the %s kept the digest %s", what, digest(t, a))
		}
	}
}

func TestBuildContents(t *testing.T) {
	bin, data := fakeBinary(t, 1<<20)
	img, err := Build(testOptions(bin))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (numeric, so runAsNonRoot can check it)", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/kura" {
		t.Errorf("entrypoint %q, want [/kura]", cf.Config.Entrypoint)
	}
	if !cf.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %s, want the given time", cf.Created)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		AnnotationVersion: "1.2.3", AnnotationRevision: "0123abcd",
		AnnotationSource: "https://github.com/kura-db/kura", AnnotationCreated: "2023-11-14T22:13:20Z",
	}
	for k, v := range want {
		if m.Annotations[k] != v {
			t.Errorf("manifest annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
		if cf.Config.Labels[k] != v {
			t.Errorf("config label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}

	fs := files(t, img)
	for path, mode := range map[string]int64{"kura": 0o755, "etc/passwd": 0o644, "etc/group": 0o644, "tmp": 0o1777} {
		h := fs[path]
		if h == nil {
			t.Errorf("%s missing from the image", path)
			continue
		}
		if h.Mode != mode || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("%s: mode %o uid %d gid %d mtime %s, want mode %o, root-owned, the given time", path, h.Mode, h.Uid, h.Gid, h.ModTime, mode)
		}
	}
	if len(fs) != 5 {
		t.Errorf("image holds %d entries, want 5 (etc, etc/passwd, etc/group, kura, tmp)", len(fs))
	}
	if !bytes.Equal(fileContent(t, img, "kura"), data) {
		t.Error("/kura differs from the binary")
	}
	if p := string(fileContent(t, img, "etc/passwd")); !strings.Contains(p, "kura:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks the kura user:\n%s", p)
	}
}

func TestBuildRefusesMissingInputs(t *testing.T) {
	bin, _ := fakeBinary(t, 10)
	o := testOptions(bin)
	o.Version = ""
	if _, err := Build(o); err == nil {
		t.Error("a build without a version succeeded")
	}
	o = testOptions(filepath.Join(t.TempDir(), "absent"))
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "kura binary") {
		t.Errorf("a build of a missing binary: %v", err)
	}
	if _, _, err := BinaryPlatform(bin); err == nil {
		t.Error("random bytes passed as an ELF binary")
	}
}

// TestWriteAndPush writes the layout and the archive, reads both back, pushes the layout's
// image to a registry served on loopback and pulls it back.
func TestWriteAndPush(t *testing.T) {
	bin, data := fakeBinary(t, 1<<20)
	img, err := Build(testOptions(bin))
	if err != nil {
		t.Fatal(err)
	}
	want := digest(t, img)
	dir := t.TempDir()
	tag, err := name.NewTag("kura-db/kura:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(filepath.Join(dir, "oci"), img, tag); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(filepath.Join(dir, "kura.tar"), img, tag); err != nil {
		t.Fatal(err)
	}
	fromLayout, err := ReadLayout(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if got := digest(t, fromLayout); got != want {
		t.Errorf("layout holds %s, built %s", got, want)
	}
	fromArchive, err := tarball.ImageFromPath(filepath.Join(dir, "kura.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	// A docker archive has no manifest; its config (and so the image ID) must survive.
	wantCfg, _ := img.ConfigName()
	if got, _ := fromArchive.ConfigName(); got != wantCfg {
		t.Errorf("archive config %s, built %s", got, wantCfg)
	}

	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("registry listens on %s, want loopback", host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, err := Push(ctx, fromLayout, host+"/kura:1.2.3", false)
	if err != nil {
		t.Fatal(err)
	}
	if ref.DigestStr() != want.String() {
		t.Errorf("pushed as %s, built %s", ref, want)
	}
	pulled, err := Pull(ctx, host+"/kura:1.2.3", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest(t, pulled); got != want {
		t.Errorf("pulled %s, pushed %s", got, want)
	}
	if !bytes.Equal(fileContent(t, pulled, "kura"), data) {
		t.Error("/kura pulled back differs from the binary")
	}
	if _, err := Pull(ctx, host+"/kura:absent", false); err == nil {
		t.Error("pulling an absent tag succeeded")
	}
}
