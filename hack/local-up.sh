#!/usr/bin/env bash
# Starts the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# the kura-local node agent (3 Nodes whose Pods run as host processes), all in the background
# with their state, pidfiles and logs under test/.local/ (override with KURA_LOCAL_STATE_DIR).
# Installs what is missing first. Needs root. Stop everything with hack/local-down.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ $(id -u) -ne 0 ]]; then
  echo "hack/local-up.sh needs root (network namespaces, a bridge, nftables, mounts)" >&2
  exit 1
fi
state="${KURA_LOCAL_STATE_DIR:-$root/test/.local}"

pkgs=(iproute2 nftables util-linux etcd-server mariadb-server mariadb-client mariadb-backup)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may start system services; the local cluster runs its own processes.
if command -v systemctl >/dev/null 2>&1; then
  for svc in mariadb etcd; do
    if systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
  done
fi

k8s="$(hack/build-k8s.sh | tail -1)"
mkdir -p bin
go build -o bin/kura-local ./test/localcluster/cmd/kura-local
if ! CGO_ENABLED=0 go build -trimpath -o bin/kura ./cmd/kura; then
  echo "warning: failed to build bin/kura; Pods of the operator image will fail with ErrImagePull" >&2
fi

bin/kura-local up --state-dir "$state" --k8s-bin-dir "$k8s" --kura-binary "$root/bin/kura"
echo "kubeconfig: $state/kubeconfig"
echo "kubectl:    $k8s/kubectl"
echo "logs:       $state/logs/ (containers: bin/kura-local logs <ns>/<pod> [container])"
