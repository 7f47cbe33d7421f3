#!/usr/bin/env bash
# Installs the Debian packages the tests and the local cluster need, once (or the packages
# named as arguments). Safe to re-run.
set -euo pipefail
pkgs=(mariadb-server mariadb-client mariadb-backup etcd-server iproute2 nftables util-linux procps)
[[ $# -gt 0 ]] && pkgs=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  # The packaged mariadb service must not start: tests run their own mariadbd processes.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may start a system mariadbd/etcd; tests never use them.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb 2>/dev/null; then
  systemctl stop mariadb || true
fi
