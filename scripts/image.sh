#!/usr/bin/env bash
# Builds the node image (default tag raftlimit:latest, or $RAFTLIMIT_IMAGE)
# FROM scratch out of the static release binary of the shared build, then
# makes the deploy files the compose cluster mounts (scripts/deploy-files.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/ensure-deps.sh
command -v docker >/dev/null || { echo "error: docker is not installed" >&2; exit 1; }
image="${RAFTLIMIT_IMAGE:-raftlimit:latest}"
cargo build --release -p raftlimit-server
bin="$RAFTLIMIT_BIN_DIR/raftlimit-server"
# A scratch image has no dynamic loader or libraries: refuse a binary that
# asks for either (a static-pie has neither an interpreter nor NEEDED entries).
if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
  echo "error: $bin is dynamically linked; the image needs -C target-feature=+crt-static (.cargo/config.toml)" >&2
  exit 1
fi
# The build context holds the binary only, never the target directory.
context="$CARGO_TARGET_DIR/image-context"
rm -rf "$context"
mkdir -p "$context/data"
chmod 700 "$context/data"
cp deploy/Dockerfile "$context/Dockerfile"
cp "$bin" "$context/raftlimit-server"
strip "$context/raftlimit-server" 2>/dev/null || true
docker build --tag "$image" "$context"
docker image ls "$image"
bash scripts/deploy-files.sh --containers
