// Package image builds the Kura operator image from the static kura binary alone: no container
// engine, no base image. The image has one layer (the binary at /kura, /etc/passwd and
// /etc/group naming the non-root user, an empty /tmp), an OCI config that runs /kura as that
// user, and OCI annotations and labels with the version, source and revision. Every timestamp
// comes from Options.Created, so the same inputs always give the same digest.
//
// The image is written as an OCI image layout (a directory; push it to a registry) and as a
// `docker save` archive (a tarball; `docker load`, `podman load`, `ctr images import`).
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// BinaryPath is where the kura binary lives in the image: the chart runs /kura, and the
	// database Pods' kura-copy init container runs `/kura copy-binary`.
	BinaryPath = "/kura"
	// UID and GID of the image's user, the chart's podSecurityContext.runAsUser/runAsGroup.
	UID = 65532
	GID = 65532
	// UserName is the user's name in the image's /etc/passwd.
	UserName = "kura"

	// The OCI annotation (and label) keys the image carries.
	AnnotationVersion  = "org.opencontainers.image.version"
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationCreated  = "org.opencontainers.image.created"
	AnnotationTitle    = "org.opencontainers.image.title"
	// AnnotationRefName names the image inside an OCI layout (`oci:<dir>:<ref name>`).
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Options describe one image build.
type Options struct {
	// Binary is the path of the static kura binary to put at /kura.
	Binary string
	// Version, Revision and Source go into the annotations and labels. Version is required.
	Version  string
	Revision string
	Source   string
	// Created is the time stamped on the config, the history and every file: the commit time
	// of the sources, so a rebuild of the same commit gives the same digest.
	Created time.Time
	// Architecture and OS of the binary (GOARCH and GOOS). OS defaults to linux.
	Architecture string
	OS           string
}

// Build assembles the image in memory.
func Build(o Options) (v1.Image, error) {
	if o.Binary == "" || o.Version == "" || o.Architecture == "" {
		return nil, errors.New("image: Binary, Version and Architecture are required")
	}
	if o.OS == "" {
		o.OS = "linux"
	}
	created := o.Created.UTC().Truncate(time.Second)
	layer, err := rootLayer(o.Binary, created)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		AnnotationTitle:   "kura",
		AnnotationVersion: o.Version,
		AnnotationCreated: created.Format(time.RFC3339),
	}
	if o.Source != "" {
		labels[AnnotationSource] = o.Source
	}
	if o.Revision != "" {
		labels[AnnotationRevision] = o.Revision
	}
	cfg := &v1.ConfigFile{
		Architecture: o.Architecture,
		OS:           o.OS,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", UID, GID),
			Entrypoint: []string{BinaryPath},
			Env:        []string{"PATH=/"},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to set the image config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "kura image build: " + BinaryPath + ", /etc/passwd, /etc/group, /tmp",
			Comment:   "built from the kura binary alone, without a base image",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to add the layer: %w", err)
	}
	// The manifest carries the same keys as the config's labels: registries and `skopeo
	// inspect` show annotations, `docker inspect` shows labels.
	ann, ok := mutate.Annotations(img, labels).(v1.Image)
	if !ok {
		return nil, errors.New("image: annotating the manifest did not give an image")
	}
	return ann, nil
}

// rootLayer is the image's only layer, gzip-compressed once in memory. Entries are written in
// a fixed order with fixed owners, modes and times.
func rootLayer(binary string, mtime time.Time) (v1.Layer, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("failed to read the kura binary: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/:/sbin/nologin\n%s:x:%d:%d:%s:/tmp:/sbin/nologin\n", UserName, UID, GID, UserName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	entries := []struct {
		name string
		mode int64
		dir  bool
		data []byte
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "kura", mode: 0o755, data: bin},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("failed to write the layer: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("failed to write the layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to write the layer: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, &raw); err != nil {
		return nil, fmt.Errorf("failed to compress the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("failed to compress the layer: %w", err)
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes img as the only image of a fresh OCI image layout at dir, named ref (the
// ref.name annotation, e.g. kura-db/kura:0.1.0), replacing what dir held.
func WriteLayout(dir string, img v1.Image, ref name.Reference) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to clear %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("failed to create the OCI layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{AnnotationRefName: ref.String()})); err != nil {
		return fmt.Errorf("failed to write the image to %s: %w", dir, err)
	}
	// Blobs are written through private temporary files; make them readable like the rest,
	// so a non-root user can copy or serve the layout.
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := os.Chmod(b, 0o644); err != nil {
			return fmt.Errorf("failed to make %s readable: %w", b, err)
		}
	}
	return nil
}

// WriteArchive writes img as a `docker save` archive tagged ref at path, atomically.
func WriteArchive(path string, img v1.Image, ref name.Tag) error {
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("failed to write the image archive %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to move %s into place: %w", path, err)
	}
	return nil
}

// ReadLayout returns the image a WriteLayout call wrote at dir.
func ReadLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open the OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("failed to read %s/index.json: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read %s/index.json: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s holds %d images, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}
