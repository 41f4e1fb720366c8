#!/usr/bin/env bash
# Makes the base image the Dockerfiles start from, `debian:bookworm-slim`, from Debian's
# packages, for machines whose Docker engine reaches no registry:
#
#   deploy/scripts/base-image.sh          # skips when the image exists
#
# It debootstraps a minimal bookworm (`--variant=minbase`) into a temporary folder and
# `docker import`s it under the tag the Dockerfiles' FROM names, so they build unchanged.
# Needs the `debootstrap` package and root (through sudo when run as another user).
# DEBIAN_MIRROR picks the mirror.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

tag="${BASE_IMAGE:-debian:bookworm-slim}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"
  exit 0
fi
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || {
  echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2
  exit 1
}

rootfs=$(mktemp -d)
trap 'as_root rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm into $rootfs (a few minutes) ..."
as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
}
rm -f "$rootfs.log"
# What the official slim image leaves out: apt's package lists and caches, docs, man pages.
as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
as_root tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$tag" >/dev/null
echo "base image $tag imported"
