#!/usr/bin/env bash
# `make bench`: builds raftlimit-server and the load generator (release) and
# runs `raftlimit-bench suite`, which starts raftlimit clusters and
# redis-server instances on loopback, measures them side by side and
# rewrites the generated part of docs/benchmarks.md and docs/bench-latency.svg.
# Method and options: docs/benchmarks.md (`raftlimit-bench suite --help`).
#
# Arguments, and the words of $BENCH_ARGS, are passed to the suite:
#   BENCH_ARGS=--quick make bench        a one-minute subset
#   BENCH_ARGS=--no-publish make bench   measure and print only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
bash scripts/ensure-deps.sh redis
cargo build --release -p raftlimit-server -p raftlimit-client
# shellcheck disable=SC2086 # BENCH_ARGS is a list of words
exec "$RAFTLIMIT_BIN_DIR/raftlimit-bench" suite ${BENCH_ARGS:-} "$@"
