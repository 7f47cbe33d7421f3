#!/usr/bin/env bash
# Stops the local cluster started by hack/local-up.sh and removes everything it made: processes,
# Pod mounts and network namespaces, veths, the kura0 bridge, the nftables table, the service
# route and the state dir (KURA_LOCAL_STATE_DIR, default test/.local/). Pass --keep-state to keep
# the logs and etcd data. Safe to run when nothing runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ $(id -u) -ne 0 ]]; then
  echo "hack/local-down.sh needs root" >&2
  exit 1
fi
if [[ ! -x bin/kura-local ]]; then
  mkdir -p bin
  go build -o bin/kura-local ./test/localcluster/cmd/kura-local
fi
bin/kura-local down --state-dir "${KURA_LOCAL_STATE_DIR:-$root/test/.local}" "$@"
