#!/usr/bin/env bash
# Starts the local 3-node cluster in the foreground: RESP on 127.0.0.1:7001-7003,
# HTTP on 127.0.0.1:9001-9003, data under ./data/node{1,2,3}. Ctrl-C stops all
# three cleanly; running it again brings back the same data.
#
# With --secure, the same ports serve TLS only (client certificates
# required), nodes talk mutual TLS, AUTH is on and data is encrypted at rest;
# configs are config/secure/node{1,2,3}.toml, certificates deploy/tls/, the
# password deploy/secrets/password and the keys deploy/secrets/node{1,2,3}.keys,
# all generated when absent (scripts/deploy-files.sh, shared with the
# containers).
#
# The launcher (raftlimit-cluster) does the rest: it starts one node per
# config file, waits until every node is ready, prints the PIDs and
# addresses, and on Ctrl-C or SIGTERM stops each node by its PID. Node logs
# go to data/node{1,2,3}.log.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/ensure-deps.sh
cargo build --release -p raftlimit-server -p raftlimit-launcher
configs=config
connect="redis-cli -p 7001"
if [ "${1:-}" = "--secure" ]; then
  configs=config/secure
  bash scripts/deploy-files.sh
  mkdir -p data/secure
  RAFTLIMIT_REQUIREPASS="$(cat deploy/secrets/password)"
  export RAFTLIMIT_REQUIREPASS
  connect="redis-cli -p 7001 --tls --cacert deploy/tls/ca.crt --cert deploy/tls/client.crt --key deploy/tls/client.key --user default --pass \$(cat deploy/secrets/password)"
fi
echo "connect with: $connect   (or ports 7002, 7003: any node serves any command)"
exec "$RAFTLIMIT_BIN_DIR/raftlimit-cluster" up --dir data \
  --config "$configs/node1.toml" --config "$configs/node2.toml" --config "$configs/node3.toml"
