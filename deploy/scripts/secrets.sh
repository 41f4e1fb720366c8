#!/usr/bin/env bash
# Makes the secrets deploy/docker-compose.yaml mounts, once (existing files are kept):
#
#   deploy/scripts/secrets.sh [DIR]        # DIR: deploy/secrets
#
#   DIR/cluster.secret   the cluster secret (mutual TLS between scheduler and executors)
#   DIR/password         the password of the user `sluice` (role engineer: submit, query)
#   DIR/scheduler.yaml   the scheduler's config: that user's Argon2id hash, staging roots
#
# The secret and the hash come from the Sluice image itself (SLUICE_IMAGE, default
# sluice:local), so nothing but Docker is needed. The folder is private to its owner; the
# files are readable by the containers' non-root user through their bind mounts.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir="${1:-deploy/secrets}"
image="${SLUICE_IMAGE:-sluice:local}"
mkdir -p "$dir"
chmod 0700 "$dir"

if [ ! -s "$dir/cluster.secret" ]; then
  docker run --rm "$image" sluice-scheduler cluster-secret > "$dir/cluster.secret"
fi
if [ ! -s "$dir/password" ]; then
  head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > "$dir/password"
fi
if [ ! -s "$dir/scheduler.yaml" ]; then
  hash=$(docker run --rm -e SLUICE_PASSWORD="$(cat "$dir/password")" "$image" \
    sluice-scheduler hash-password)
  cat > "$dir/scheduler.yaml" <<YAML
# The scheduler's config (deploy/docker-compose.yaml mounts it as a secret).
users:
  - name: sluice
    password_hash: "$hash"
    role: engineer
# Job sources may read only here (and the lake).
staging_roots: ["s3://staging/"]
YAML
fi
chmod 0644 "$dir/cluster.secret" "$dir/password" "$dir/scheduler.yaml"
echo "secrets in $dir (user: sluice, password in $dir/password)"
