# Shared build environment for every make target: one target directory, one
# profile (release) and one set of flags (.cargo/config.toml), so the static
# RocksDB build is compiled once per machine and reused by tests, the local
# cluster, benchmarks and the container image.
#
# A target directory outside the clone is reused when it exists, so a fresh
# clone on a machine that has built before does not rebuild RocksDB.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if [ -d /var/cache/raftlimit/target ]; then
    export CARGO_TARGET_DIR=/var/cache/raftlimit/target
  else
    export CARGO_TARGET_DIR="$(pwd)/target"
  fi
fi
export RAFTLIMIT_BIN_DIR="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
