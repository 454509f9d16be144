# invitesync: `make demo` to see it work, `make test` to test it.
CARGO ?= cargo
PORT ?= 8787
BIN := target/release/invitesync

.PHONY: all build demo test bench lint ci clean

all: build

build:
	$(CARGO) build --release --locked

## Builds, starts the sandbox, runs the sample migration, shows the results, stops the sandbox.
demo: build
	PORT=$(PORT) BIN=$(BIN) bash scripts/demo.sh

## The whole test suite (unit, end-to-end against an in-process sandbox, CLI).
test:
	bash scripts/test.sh

## Throughput, latency-bound, adaptive, rate-limit, memory, resume and checkpoint ratios (README, Performance).
bench: build
	BIN=$(BIN) bash scripts/bench.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

ci: test lint

clean:
	$(CARGO) clean
	rm -rf target/demo
