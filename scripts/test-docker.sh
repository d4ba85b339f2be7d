#!/usr/bin/env bash
# The short docker chaos run of `make test`: builds the node image and runs
# the compose cluster test (jepsen/tests/it/docker.rs: kill, pause, the
# leader isolated, a bridge partition), all within three minutes.
#
# When docker is not usable (no CLI, no daemon, no compose) it says
# `skipped the docker chaos run: <reason>` and exits 0, so `make test` goes
# on. A run that fails or exceeds the budget fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

budget="${RAFTLIMIT_DOCKER_BUDGET:-180}"

skip() {
  echo "skipped the docker chaos run: $*"
  exit 0
}
command -v docker >/dev/null 2>&1 || skip "no docker CLI on PATH"
if ! why="$(docker info --format '{{.ServerVersion}}' 2>&1)"; then
  skip "\`docker info\` failed: $(tail -n 1 <<<"$why")"
fi
docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1 ||
  skip "neither \`docker compose\` nor \`docker-compose\` works"

# Compiling is not part of the budget: after `make test-rust` both builds
# are up to date (same profile, same target directory), so these take
# seconds, and image.sh then copies the very binary the tests ran.
bash scripts/ensure-deps.sh
cargo build --release -p raftlimit-server
cargo test --release -p raftlimit-jepsen --test it --no-run

# A project name of this run's own, so a timeout (which kills the test
# before it can tear down) is cleaned up here without touching anyone
# else's containers.
project="raftlimit-it-sh$$"
cleanup() {
  local filter="label=com.docker.compose.project=$project"
  local ids
  ids="$(docker ps -aq --filter "$filter")"
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null
  ids="$(docker network ls -q --filter "$filter")"
  [ -z "$ids" ] || docker network rm $ids >/dev/null
  ids="$(docker volume ls -q --filter "$filter")"
  [ -z "$ids" ] || docker volume rm $ids >/dev/null
}
trap cleanup EXIT

# In the background, so an interrupt reaches it: `timeout` runs in a process
# group of its own (to stop the whole test on expiry), which the terminal's
# Ctrl-C does not reach.
start=$SECONDS
RAFTLIMIT_IT_PROJECT="$project" timeout "$budget" bash -c '
  set -euo pipefail
  bash scripts/image.sh
  cargo test --release -p raftlimit-jepsen --test it docker -- --ignored --nocapture
' &
runner=$!
interrupted=0
trap 'interrupted=1; kill -TERM "$runner" 2>/dev/null || true' INT TERM
status=0
wait "$runner" || status=$?
# A trapped signal ends `wait` early: wait for the run itself to stop.
while kill -0 "$runner" 2>/dev/null; do
  status=0
  wait "$runner" || status=$?
done
took=$((SECONDS - start))
if [ "$interrupted" -eq 1 ]; then
  echo "error: the docker chaos run was interrupted" >&2
  exit 130
elif [ "$status" -eq 124 ]; then
  echo "error: the docker chaos run took more than ${budget} s and was stopped" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  echo "error: the docker chaos run failed (exit $status) after ${took} s" >&2
  exit "$status"
fi
echo "the docker chaos run passed in ${took} s"
