# Every target builds with the same profile (release) and flags
# (.cargo/config.toml), sharing one target directory (scripts/env.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help cluster cluster-secure test test-rust test-compat lint bench build certs

help:
	@echo "make cluster   start a local 3-node cluster (RESP 7001-7003, HTTP 9001-9003)"
	@echo "make cluster-secure  the same with TLS, mTLS, AUTH and encryption at rest"
	@echo "make test      run every test"
	@echo "make bench     benchmark against redis-server side by side"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make certs     development CA, node and client certificates in deploy/tls/"

build:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo build --release --workspace

cluster:
	@bash scripts/cluster.sh

cluster-secure:
	@bash scripts/cluster.sh --secure

test: test-rust test-compat

test-compat:
	@bash tests/compat/run.sh

test-rust:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo test --release --workspace

# Keeps an existing deploy/tls/ca.crt and ca.key; pass ARGS=--new-ca to replace them.
certs:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo build --release -p raftlimit-server && "$$RAFTLIMIT_BIN_DIR/raftlimit-server" certs --dir deploy/tls $(ARGS)

lint:
	@source scripts/env.sh && cargo fmt --all -- --check && cargo clippy --release --workspace --all-targets -- -D warnings

bench:
	@bash scripts/bench.sh
