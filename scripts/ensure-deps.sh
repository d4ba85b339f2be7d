#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine, or stops with a
# clear message when it cannot.
set -euo pipefail
need=()
command -v cargo >/dev/null || { echo "error: cargo is not installed (install Rust with rustup first)" >&2; exit 1; }
# RocksDB's bindings are generated with bindgen, which loads libclang at build time.
# libclang-cpp (installed with LLVM itself) is not the library bindgen loads.
compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null || need+=(libclang-dev)
command -v g++ >/dev/null || need+=(g++)
for extra in "$@"; do
  case "$extra" in
    redis) command -v redis-server >/dev/null || need+=(redis-server);
           command -v redis-benchmark >/dev/null || need+=(redis-tools) ;;
    redis-cli) command -v redis-cli >/dev/null || need+=(redis-tools) ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: missing packages: ${need[*]}; install them with apt-get (needs root)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
