#!/usr/bin/env bash
# Builds the tests' S3 stand-in image (moto's server) from deploy/moto/Dockerfile:
#
#   deploy/scripts/moto-image.sh [TAG]     # TAG: sluice-test-moto:local; skips when it exists
#
# The wheels are downloaded on the host with PIP (default: the test venv's pip), which
# trusts what the host trusts, and the build installs from them alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${1:-sluice-test-moto:local}"
pip="${PIP:-${SLUICE_VENV:-$PWD/.venv}/bin/pip}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag exists"
  exit 0
fi
deploy/scripts/base-image.sh
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp deploy/moto/Dockerfile "$context/"
"$pip" download --quiet --disable-pip-version-check "moto[server]>=5.1,<6" -d "$context/wheels"
docker build --quiet --build-arg PIP_NO_INDEX=1 -t "$tag" "$context" >/dev/null
echo "image $tag built"
