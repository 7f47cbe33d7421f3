#!/usr/bin/env bash
# Installs the pinned development tools into bin/ through the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/bin"
install() { # name module@version
  local name="$1" mod="$2" stamp="$root/bin/.$1.version"
  if [[ -x "$root/bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$mod" ]]; then return; fi
  echo "installing $mod" >&2
  GOBIN="$root/bin" go install "$mod"
  echo "$mod" > "$stamp"
}
for t in "$@"; do
  case "$t" in
    controller-gen) install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 ;;
    golangci-lint) install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 ;;
    helm) install helm helm.sh/helm/v4/cmd/helm@v4.3.1 ;;
    *) echo "unknown tool $t" >&2; exit 1 ;;
  esac
done
