// Command image builds the Kura operator image from bin/kura without a container engine, and
// pushes it to a registry (`make image`, `make image-push`; docs/install.md).
//
//	go run ./hack/image build --binary bin/kura --out bin/image --repository kura-db/kura \
//	    --version 0.1.0 --revision <git sha> --source <url> --created <unix seconds>
//	go run ./hack/image push --layout bin/image/oci --to registry.example.com/kura:0.1.0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kura-db/kura/internal/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: image build|push [flags]")
	}
	switch args[0] {
	case "build":
		return build(args[1:])
	case "push":
		return push(args[1:])
	default:
		return fmt.Errorf("unknown command %q (want build or push)", args[0])
	}
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	bin := fs.String("binary", "bin/kura", "the static kura binary")
	out := fs.String("out", "bin/image", "output directory: <out>/oci (OCI layout) and <out>/kura.tar (docker archive)")
	repo := fs.String("repository", "kura-db/kura", "repository the image is named after (the chart's image.repository)")
	version := fs.String("version", "", "version: the image tag and the version annotation")
	revision := fs.String("revision", "", "source revision (git commit)")
	source := fs.String("source", "", "source repository URL")
	created := fs.Int64("created", 0, "creation time in Unix seconds (the commit time, for reproducible digests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" {
		return fmt.Errorf("--version is required")
	}
	goos, goarch, err := image.BinaryPlatform(*bin)
	if err != nil {
		return err
	}
	start := time.Now()
	img, err := image.Build(image.Options{
		Binary: *bin, Version: *version, Revision: *revision, Source: *source,
		Created: time.Unix(*created, 0), OS: goos, Architecture: goarch,
	})
	if err != nil {
		return err
	}
	tag, err := name.NewTag(*repo + ":" + *version)
	if err != nil {
		return fmt.Errorf("bad --repository/--version %q: %w", *repo+":"+*version, err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	layoutDir, archive := filepath.Join(*out, "oci"), filepath.Join(*out, "kura.tar")
	if err := image.WriteLayout(layoutDir, img, tag); err != nil {
		return err
	}
	if err := image.WriteArchive(archive, img, tag); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "digest"), []byte(d.String()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("image %s (%s/%s) %s in %.1fs\n  OCI layout:     %s\n  docker archive: %s\n",
		tag.String(), goos, goarch, d, time.Since(start).Seconds(), layoutDir, archive)
	return nil
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "bin/image/oci", "OCI layout written by build")
	to := fs.String("to", "", "destination, host/repository:tag")
	insecure := fs.Bool("insecure", false, "use plain HTTP for a registry that is not on loopback")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("--to is required (e.g. --to registry.example.com/kura:0.1.0)")
	}
	img, err := image.ReadLayout(*dir)
	if err != nil {
		return err
	}
	ref, err := image.Push(context.Background(), img, *to, *insecure)
	if err != nil {
		return err
	}
	fmt.Println(ref.String())
	return nil
}
