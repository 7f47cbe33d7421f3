#!/usr/bin/env bash
# Builds the kubectl-kura release archives (bin/plugin/kubectl-kura_<os>_<arch>.tar.gz) and
# writes their sha256 sums into the krew manifest plugins/kura.yaml. Archives are reproducible:
# -trimpath, no VCS stamp, fixed file times and owners, so a rebuild of the same sources gives
# the same sums. Run it when cutting a release; the manifest's uri points at the release assets.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version="v$(make -s --no-print-directory print-version)"
out="$root/bin/plugin"
mkdir -p "$out"
platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
manifest="plugins/kura.yaml"
for p in "${platforms[@]}"; do
  os="${p%/*}" arch="${p#*/}"
  dir="$(mktemp -d)"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -buildvcs=false -ldflags "-s -w" \
    -o "$dir/kubectl-kura" ./cmd/kubectl-kura
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf - . | gzip -n -9 > "$out/kubectl-kura_${os}_${arch}.tar.gz"
  rm -rf "$dir"
  sum=$(sha256sum "$out/kubectl-kura_${os}_${arch}.tar.gz" | cut -d' ' -f1)
  # The sha256 line follows the platform's uri line in the manifest.
  sed -i "/kubectl-kura_${os}_${arch}.tar.gz/{n;s/sha256: .*/sha256: \"$sum\"/}" "$manifest"
  echo "$out/kubectl-kura_${os}_${arch}.tar.gz $sum"
done
sed -i "s|^  version: .*|  version: \"$version\"|; s|/releases/download/v[^/]*/|/releases/download/$version/|" "$manifest"
