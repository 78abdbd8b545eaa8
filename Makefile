# Tributary — two commands on a fresh machine:
#   make up     set up if needed, start Postgres + broker + every service (Ctrl-C stops)
#   make test   set up if needed, start throw-away dependencies, run every test, stop them
SHELL := /bin/bash
ENV := source scripts/env.sh
SWIFT_BUILD = $(ENV) && swift build $$SWIFT_LINK_FLAGS

.PHONY: setup build build-release up down test chaos bench-collector bench-sessionizer bench-aggregator bench-queries bench-overload clean help

help:
	@echo "make up      run the whole pipeline locally (Collector :8080, QueryAPI :8081)"
	@echo "make test    run unit, integration and end-to-end tests against a throw-away stack"
	@echo "make chaos   the fault suite: each role killed 10 times, Postgres restarted, the broker frozen and killed, under load (~5 min)"
	@echo "make down    stop the local dev stack"
	@echo "make build   build the tributary binary (.build/debug/tributary)"
	@echo "make bench-collector   Collector vs nginx and vs librdkafka's producer (results in BENCHMARKS.md)"
	@echo "make bench-sessionizer Sessionizer vs a plain librdkafka consume+produce; memory per visitor (results in BENCHMARKS.md)"
	@echo "make bench-aggregator  Aggregator vs a plain COPY of the same rows; freshness at 5k events/s (results in BENCHMARKS.md)"
	@echo "make bench-queries     every report's p50/p95 over 10M events vs DuckDB scanning the same events (results in BENCHMARKS.md)"
	@echo "make bench-overload    rate limit, 1,000 connections, slow clients, oversized requests, memory per role, vs nginx (results in BENCHMARKS.md)"

setup:
	@bash scripts/setup

build: setup
	@$(SWIFT_BUILD) --product tributary

up: build
	@bash scripts/up

down:
	@bash scripts/stack down dev

# Unit tests need no servers; the others run against the `test` stack, purged afterwards.
test: setup
	@$(SWIFT_BUILD) --build-tests
	@bash scripts/check-compose
	@bash scripts/check-settings
	@python3 scripts/standins/test_meta_capi.py && python3 scripts/standins/test_google_ads.py
	@trap 'bash scripts/stack down test --purge >/dev/null 2>&1' EXIT; \
	  bash scripts/stack down test --purge >/dev/null 2>&1; \
	  eval "$$(bash scripts/stack up test)" && \
	  $(ENV) && swift test --skip-build $$SWIFT_LINK_FLAGS && \
	  bash scripts/e2e && \
	  bash scripts/bi-test && \
	  bash scripts/openapi-test && \
	  bash scripts/scaleout-test && \
	  bash scripts/crash-test && \
	  bash scripts/broker-loss-test && \
	  bash scripts/browser-test && \
	  bash scripts/chaos

# The fault suite: roles as separate processes, SIGKILLs, a Postgres restart, the broker frozen and killed (~5 min; also in make test).
chaos: build
	@bash scripts/chaos

build-release: setup
	@$(ENV) && swift build -c release --product tributary $$SWIFT_LINK_FLAGS --scratch-path .build-release

# Extra options through BENCH_ARGS, e.g. make bench-collector BENCH_ARGS="--duration 30 --profile"
bench-collector: build-release
	@bash scripts/bench-collector $(BENCH_ARGS)

# e.g. make bench-sessionizer BENCH_ARGS="--events 1000000 --visitors 100000 --profile"
bench-sessionizer: build-release
	@bash scripts/bench-sessionizer $(BENCH_ARGS)

# e.g. make bench-aggregator BENCH_ARGS="--rate 5000,1000 --duration 60 --profile"
bench-aggregator: build-release
	@bash scripts/bench-aggregator $(BENCH_ARGS)

# e.g. make bench-queries BENCH_ARGS="--events 2000000 --runs 20 --budget 45"
bench-queries: build-release
	@bash scripts/bench-queries $(BENCH_ARGS)

# e.g. make bench-overload BENCH_ARGS="--slow 500 --slow-seconds 60"
bench-overload: build-release
	@bash scripts/bench-overload $(BENCH_ARGS)

clean:
	rm -rf .build
