#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60) each,
# starting from the committed seed corpus in fuzz/corpus/<target>/.
#
# Only the stable toolchain is needed: cargo-fuzz passes nightly-only rustc
# flags (-Zsanitizer=address and friends), which RUSTC_BOOTSTRAP=1 allows on
# stable; the AddressSanitizer runtime ships with the stable x86_64 Linux
# standard library. FUZZ_SANITIZER=none builds without it.
#
# The fuzz crate depends on nothing that links RocksDB (raftlimit-raft is
# built without its `rocksdb` feature), so the first build takes about two
# minutes, not a RocksDB rebuild. It shares the one target directory;
# its artifacts get their own file names because the flags differ.
#
# New inputs go to fuzz/work/<target>/ (git-ignored), never to the seed
# corpus. A crash is saved in fuzz/artifacts/<target>/ and stops the run:
# add it as a regression test in the crate's tests/it/ (see docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=$(cargo fuzz list)
cargo fuzz build -s "$sanitizer"
for target in $targets; do
  mkdir -p "work/$target"
  echo "== $target: ${seconds}s"
  cargo fuzz run -s "$sanitizer" "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|Done |stat::number_of_executed_units|==[0-9]+==|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' || true
  # grep hides libFuzzer's progress lines; the pipeline's status is fuzzing's.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $target failed; see fuzz/artifacts/$target/" >&2; exit 1; }
done
