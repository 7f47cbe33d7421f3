package image

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push uploads img to the registry reference ref (host/repository:tag), with the credentials
// of the local Docker/Podman configuration (`docker login`, `podman login`). Registries on
// loopback are reached over plain HTTP, others over HTTPS unless insecure. It returns the
// reference by digest of what the registry stored.
func Push(ctx context.Context, img v1.Image, ref string, insecure bool) (name.Digest, error) {
	r, err := parse(ref, insecure)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return name.Digest{}, fmt.Errorf("failed to push %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}

// Pull fetches the image ref from its registry.
func Pull(ctx context.Context, ref string, insecure bool) (v1.Image, error) {
	r, err := parse(ref, insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, fmt.Errorf("failed to pull %s: %w", r, err)
	}
	return img, nil
}

func parse(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("bad image reference %q (want host/repository:tag): %w", ref, err)
	}
	return r, nil
}
