#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries from the k8s.io/kubernetes module source at the
# version that matches k8s.io/client-go in go.mod, and caches them under bin/k8s/<version>/.
# Nothing prebuilt is downloaded: every byte comes through the Go module proxy and is compiled here.
#
# usage: hack/build-k8s.sh [binary ...]   (default: kube-apiserver kube-controller-manager kube-scheduler kubectl)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go 2>/dev/null || true)"
if [[ -z "$client_go" ]]; then
  echo "failed to read the k8s.io/client-go version from go.mod" >&2
  exit 1
fi
k8s_version="v1.${client_go#v0.}"
out="$root/bin/k8s/$k8s_version"
mkdir -p "$out"

bins=("$@")
if [[ ${#bins[@]} -eq 0 ]]; then
  bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
fi

missing=()
for b in "${bins[@]}"; do
  [[ -x "$out/$b" ]] || missing+=("$b")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "$out"
  exit 0
fi

work="$root/bin/k8s/.build-$k8s_version"
mkdir -p "$work"
cd "$work"
if [[ ! -f go.sum ]]; then
  rm -f go.mod
  go mod init kura.local/k8s-tools >/dev/null 2>&1
  # The kubernetes go.mod replaces each staging module with a local path; point each at the
  # published module of the same minor version instead.
  gomod="$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "require k8s.io/kubernetes $k8s_version"
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$client_go" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy >/dev/null
fi
for b in "${missing[@]}"; do
  echo "building $b $k8s_version (first build only; cached in $out)" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$out/$b.tmp" "$out/$b"
done
echo "$out"
