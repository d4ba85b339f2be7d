# Every target builds with the same profile (release) and flags
# (.cargo/config.toml), sharing one target directory (scripts/env.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help cluster cluster-secure test test-rust test-compat lint bench build certs
.PHONY: image deploy-files compose-up compose-down test-docker test-docker-short
.PHONY: chaos fuzz

help:
	@echo "make cluster   start a local 3-node cluster (RESP 7001-7003, HTTP 9001-9003)"
	@echo "make cluster-secure  the same with TLS, mTLS, AUTH and encryption at rest"
	@echo "make test      run every test (with a short docker chaos run when docker is usable)"
	@echo "make bench     benchmark against redis-server side by side (BENCH_ARGS=--quick: a short run)"
	@echo "make lint      cargo fmt --check, clippy -D warnings and the architecture (dependency) check"
	@echo "make certs     development CA, node and client certificates in deploy/tls/"
	@echo "make image     the node image FROM scratch (and the deploy files); then: docker compose up -d"
	@echo "make test-docker  the compose cluster under kill, pause and partition (needs docker)"
	@echo "make fuzz      each cargo-fuzz target for FUZZ_SECONDS (default 60) on stable Rust (RUSTC_BOOTSTRAP=1, ASan)"
	@echo "make chaos     every chaos workload against every nemesis (CHAOS_DURATION=30s shortens each run); writes docs/chaos.md"

build:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo build --release --workspace

cluster:
	@bash scripts/cluster.sh

cluster-secure:
	@bash scripts/cluster.sh --secure

test: test-rust test-compat test-docker-short

test-compat:
	@bash tests/compat/run.sh

test-rust:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo test --release --workspace

# Keeps an existing deploy/tls/ca.crt and ca.key; pass ARGS=--new-ca to replace them.
certs:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo build --release -p raftlimit-server && "$$RAFTLIMIT_BIN_DIR/raftlimit-server" certs --dir deploy/tls $(ARGS)

# The architecture test checks the crate dependency rules and module cycles.
lint:
	@source scripts/env.sh && cargo fmt --all -- --check && cargo clippy --release --workspace --all-targets -- -D warnings && cargo test --release -p raftlimit-server --test it architecture

bench:
	@bash scripts/bench.sh

# The container cluster (docker-compose.yml, docs/deploy.md).
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

image:
	@bash scripts/image.sh

deploy-files:
	@bash scripts/deploy-files.sh --containers

compose-up: deploy-files
	@$(COMPOSE) up -d && $(COMPOSE) ps

compose-down:
	@$(COMPOSE) down --volumes

# What `make test` runs: the same test within 180 s, or
# `skipped the docker chaos run: <reason>` when docker is not usable.
test-docker-short:
	@bash scripts/test-docker.sh

# The compose cluster under kill, pause and partitions (the leader isolated,
# a bridge), with no time limit. Skipped, with the reason, when docker is
# unavailable.
test-docker: image
	@source scripts/env.sh && cargo test --release -p raftlimit-jepsen --test it docker -- --ignored --nocapture

# Every workload against every nemesis, one fresh cluster each; the table goes
# into docs/chaos.md and each run into jepsen-runs/. The default target, auto,
# runs local processes and, when docker is usable, the partition runs on the
# compose cluster (built here first); CHAOS_TARGET=local or docker forces one.
CHAOS_DURATION ?= 5m
CHAOS_TARGET ?= auto
chaos:
	@source scripts/env.sh && bash scripts/ensure-deps.sh && cargo build --release -p raftlimit-server -p raftlimit-jepsen && \
	if [ "$(CHAOS_TARGET)" != local ] && docker info >/dev/null 2>&1; then bash scripts/image.sh; \
	elif [ "$(CHAOS_TARGET)" = auto ]; then echo "docker is not usable: the partition runs will be reported as not run"; fi && \
	"$$RAFTLIMIT_BIN_DIR/raftlimit-jepsen" matrix --duration $(CHAOS_DURATION) --target $(CHAOS_TARGET) --docs docs/chaos.md

# cargo-fuzz on the stable toolchain: see scripts/fuzz.sh.
fuzz:
	@bash scripts/fuzz.sh
