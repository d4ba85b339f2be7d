#!/usr/bin/env bash
# Starts the local 3-node cluster in the foreground: RESP on 127.0.0.1:7001-7003,
# HTTP on 127.0.0.1:9001-9003, data under ./data/node{1,2,3}. Ctrl-C stops all
# three cleanly; running it again brings back the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/ensure-deps.sh
cargo build --release -p raftlimit-server
bin="$RAFTLIMIT_BIN_DIR/raftlimit-server"
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
  "$bin" --config "config/node$i.toml" 2>>"data/node$i.log" &
  pids+=("$!")
done
# Wait (bounded) until every node is ready.
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    if "$bin" --config "config/node$i.toml" healthcheck 2>/dev/null; then break; fi
    sleep 0.1
  done
done
cat <<MSG

raftlimit cluster is up (node PIDs: ${pids[*]})
  connect:  redis-cli -p 7001      (or 7002, 7003: any node serves any command)
  metrics:  curl http://127.0.0.1:9001/metrics   health: /healthz   ready: /readyz
  logs:     data/node{1,2,3}.log
Press Ctrl-C to stop all three.
MSG
wait
