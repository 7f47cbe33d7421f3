#!/usr/bin/env bash
# Installs the Debian packages the image test opens the image with (skopeo, umoci), once.
# Safe to re-run. The image itself is built without them (make image).
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" skopeo umoci
