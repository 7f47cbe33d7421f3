#!/usr/bin/env bash
# Builds the S3 server the backup tests run on loopback (github.com/versity/versitygw, posix
# backend) from the Go module proxy into bin/. Cached by version.
set -euo pipefail
VERSION=${VERSITYGW_VERSION:-v1.8.0}
BIN=$(cd "$(dirname "$0")/.." && pwd)/bin
out=$BIN/versitygw-$VERSION
if [[ ! -x $out ]]; then
  mkdir -p "$BIN"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  GOBIN=$tmp CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
  mv "$tmp/versitygw" "$out"
fi
ln -sf "$(basename "$out")" "$BIN/versitygw"
echo "$out"
