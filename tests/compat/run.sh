#!/usr/bin/env bash
# Runs the real Redis client libraries (tests/compat/requirements.txt)
# against fresh 3-node raftlimit clusters that the test fixtures start with
# the launcher (raftlimit-cluster).
# COMPAT_TARGET=redis runs the same tests against a real redis-server.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
bash scripts/ensure-deps.sh redis
command -v python3 >/dev/null || { echo "error: python3 is required for the compatibility suite" >&2; exit 1; }
if [ "${COMPAT_TARGET:-raftlimit}" = raftlimit ]; then
  cargo build --release -p raftlimit-server -p raftlimit-launcher
fi
# The virtual environment lives beside the shared target directory when that
# exists, so a fresh clone on a machine that ran this before reuses it.
venv="${RAFTLIMIT_COMPAT_VENV:-$(dirname "$CARGO_TARGET_DIR")/compat-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r tests/compat/requirements.txt
export RAFTLIMIT_SERVER_BIN="$RAFTLIMIT_BIN_DIR/raftlimit-server"
export RAFTLIMIT_CLUSTER_BIN="$RAFTLIMIT_BIN_DIR/raftlimit-cluster"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/compat "$@"
