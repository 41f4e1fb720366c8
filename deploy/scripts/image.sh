#!/usr/bin/env bash
# Builds the Sluice image from binaries already built on this (Debian bookworm) host, through
# deploy/Dockerfile's `runtime-prebuilt` target, for machines without a registry:
#
#   cargo build --bins && deploy/scripts/image.sh [TAG] [PROFILE]    # TAG: sluice:local, PROFILE: debug
#
# The base image is made first when missing (base-image.sh). The build context is a temporary
# folder holding only the three binaries (debug info stripped from the copies), so no source,
# secret or build cache reaches the engine.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${1:-sluice:local}"
profile="${2:-debug}"
bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/$profile"

deploy/scripts/base-image.sh
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for bin in sluice sluice-scheduler sluice-executor; do
  [ -x "$bin_dir/$bin" ] || {
    echo "error: $bin_dir/$bin is missing: run cargo build --bins first" >&2
    exit 1
  }
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$context/$bin" "$bin_dir/$bin"
  else
    cp "$bin_dir/$bin" "$context/$bin"
  fi
done
docker build --quiet -f deploy/Dockerfile --target runtime-prebuilt -t "$tag" "$context" >/dev/null
echo "image $tag built from $bin_dir"
