# invitesync: `make demo` to see it work, `make test` to test it.
CARGO ?= cargo
PORT ?= 8787
BIN := target/release/invitesync

.PHONY: all build demo test bench lint ci clean image image-test

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

## The container image (Containerfile) with podman or docker: IMAGE=localhost/invitesync:VERSION;
## BUILD_IMAGE and RUN_IMAGE choose the bases.
image:
	IMAGE="$(IMAGE)" BUILD_IMAGE="$(BUILD_IMAGE)" RUN_IMAGE="$(RUN_IMAGE)" bash scripts/image.sh

## Builds the image with podman on bases made from Debian's packages (no registry needed),
## then runs it against the sandbox from its own filesystem. Needs root; cached in target/image.
image-test:
	IMAGE="$(IMAGE)" bash scripts/image-test.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

ci: test lint

clean:
	$(CARGO) clean
	rm -rf target/demo
