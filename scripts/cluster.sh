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
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/ensure-deps.sh
cargo build --release -p raftlimit-server
bin="$RAFTLIMIT_BIN_DIR/raftlimit-server"
configs=config
if [ "${1:-}" = "--secure" ]; then
  configs=config/secure
  bash scripts/deploy-files.sh
  mkdir -p data/secure
  RAFTLIMIT_REQUIREPASS="$(cat deploy/secrets/password)"
  export RAFTLIMIT_REQUIREPASS
fi
mkdir -p data
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping nodes: ${pids[*]}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "all nodes stopped"
  exit 0
}
trap stop INT TERM EXIT
for i in 1 2 3; do
  "$bin" --config "$configs/node$i.toml" 2>>"data/node$i.log" &
  pids+=("$!")
done
# Wait (bounded) until every node is ready.
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    if "$bin" --config "$configs/node$i.toml" healthcheck 2>/dev/null; then break; fi
    sleep 0.1
  done
done
for i in 0 1 2; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "error: node $((i + 1)) exited during startup (is another process using its ports?); last log lines:" >&2
    tail -n 5 "data/node$((i + 1)).log" >&2
    exit 1
  fi
done
if [ "$configs" = config/secure ]; then
  connect="redis-cli -p 7001 --tls --cacert deploy/tls/ca.crt --cert deploy/tls/client.crt --key deploy/tls/client.key --user default --pass \$(cat deploy/secrets/password)"
else
  connect="redis-cli -p 7001"
fi
cat <<MSG

raftlimit cluster is up (node PIDs: ${pids[*]})
  connect:  $connect
            (or ports 7002, 7003: any node serves any command)
  metrics:  curl http://127.0.0.1:9001/metrics   health: /healthz   ready: /readyz
  logs:     data/node{1,2,3}.log
Press Ctrl-C to stop all three.
MSG
wait
