#!/usr/bin/env bash
# Generates, when absent, the files a secure cluster needs: certificates in
# deploy/tls/ (CA, node1-3, client), the default user's password in
# deploy/secrets/password and one encryption-at-rest key file per node in
# deploy/secrets/node{1,2,3}.keys. `make cluster-secure` and the containers
# (`make deploy-files`, `make image`) use the same files.
#
# With --containers it also fills deploy/secrets/docker/node{1,2,3}/, the
# directory each container mounts read-only at /secrets: its CA, certificate
# and key, its key file and an ACL file holding only the password's SHA-256.
# Containers run as uid 10001, which must own the private files there, so
# this step needs root (sudo) when the files are not already in place.
#
# Usage: scripts/deploy-files.sh [--containers]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

containers=false
case "${1:-}" in
  --containers) containers=true ;;
  "") ;;
  *) echo "usage: $0 [--containers]" >&2; exit 2 ;;
esac

# The fixed addresses of the compose network (docker-compose.yml). Node
# certificates carry them so that clients inside that network can verify a
# node by its address; nodes verify each other by the name node-N.raftlimit.
node_ips=(172.28.0.11 172.28.0.12 172.28.0.13)
# The image's numeric user (deploy/Dockerfile).
container_uid=10001

bin="$RAFTLIMIT_BIN_DIR/raftlimit-server"
if [ ! -x "$bin" ]; then
  bash scripts/ensure-deps.sh
  cargo build --release -p raftlimit-server
fi

mkdir -p deploy/tls deploy/secrets
chmod 700 deploy/secrets

# Node certificates are (re)issued when they are missing or were not issued
# here with these addresses (e.g. by a plain `make certs`): the stamp records
# the addresses and the certificates' digest.
san_args=()
for ip in "${node_ips[@]}"; do san_args+=(--san "$ip"); done
stamp=deploy/secrets/node-certs.stamp
digest() {
  echo "${node_ips[*]}"
  sha256sum deploy/tls/node{1,2,3}.crt deploy/tls/node{1,2,3}.key 2>/dev/null || true
}
if [ ! -f deploy/tls/ca.crt ] || [ ! -f deploy/tls/client.crt ] \
  || ! [ -f "$stamp" ] || [ "$(digest)" != "$(cat "$stamp")" ]; then
  "$bin" certs --dir deploy/tls "${san_args[@]}"
  digest > "$stamp"
fi

if [ ! -f deploy/secrets/password ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > deploy/secrets/password)
fi
for i in 1 2 3; do
  [ -f "deploy/secrets/node$i.keys" ] || "$bin" keygen "deploy/secrets/node$i.keys" >/dev/null
done

$containers || exit 0

hash="$(tr -d '\n' < deploy/secrets/password | sha256sum | cut -d' ' -f1)"
acl="user default on #$hash ~* &* +@all"
# Whether node i's directory already holds exactly the current files.
up_to_date() {
  local dir="deploy/secrets/docker/node$1"
  [ -f "$dir/users.acl" ] && [ "$(cat "$dir/users.acl")" = "$acl" ] || return 1
  cmp -s deploy/tls/ca.crt "$dir/ca.crt" && cmp -s "deploy/tls/node$1.crt" "$dir/node.crt" \
    && cmp -s "deploy/tls/node$1.key" "$dir/node.key" \
    && cmp -s "deploy/secrets/node$1.keys" "$dir/encryption.keys" || return 1
  [ "$(stat -c %u "$dir/node.key")" = "$container_uid" ]
}
for i in 1 2 3; do
  up_to_date "$i" && continue
  if [ "$(id -u)" != 0 ]; then
    echo "error: deploy/secrets/docker/node$i/ must be (re)written and owned by uid $container_uid," >&2
    echo "       the containers' user; run: sudo bash scripts/deploy-files.sh --containers" >&2
    exit 1
  fi
  dir="deploy/secrets/docker/node$i"
  install -d -o "$container_uid" -g "$container_uid" -m 0700 "$dir"
  # Each file is replaced (new inode), which the node's certificate
  # watcher picks up through the directory mount.
  install -o "$container_uid" -g "$container_uid" -m 0644 deploy/tls/ca.crt "$dir/ca.crt"
  install -o "$container_uid" -g "$container_uid" -m 0644 "deploy/tls/node$i.crt" "$dir/node.crt"
  install -o "$container_uid" -g "$container_uid" -m 0600 "deploy/tls/node$i.key" "$dir/node.key"
  install -o "$container_uid" -g "$container_uid" -m 0600 "deploy/secrets/node$i.keys" "$dir/encryption.keys"
  printf '%s\n' "$acl" > "$dir/.users.acl.tmp"
  install -o "$container_uid" -g "$container_uid" -m 0600 "$dir/.users.acl.tmp" "$dir/users.acl"
  rm -f "$dir/.users.acl.tmp"
  echo "wrote $dir/"
done
