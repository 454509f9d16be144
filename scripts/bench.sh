#!/usr/bin/env bash
# The performance targets (README, Performance), measured against the sandbox on
# 127.0.0.1 in one run: each scenario's ratio next to its target, printed and
# written to target/bench/report.md.
#
#   BENCH_QUICK=1   a smaller version (a couple of minutes)
#   BENCH_ONLY=a,b  only these scenarios: overhead, curl, latency, adaptive,
#                   ratelimit, memory, resume, checkpoint
#   BENCH_STRICT=1  exit 1 when a target is missed
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/invitesync}
CARGO=${CARGO:-cargo}
[ -x "$BIN" ] || "$CARGO" build --release --locked
args=(--bin "$BIN")
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then args+=(--quick); fi
if [ -n "${BENCH_ONLY:-}" ]; then args+=(--only "$BENCH_ONLY"); fi
# The bench profile (release settings); `cargo test` never builds it.
exec "$CARGO" bench --locked --bench pipeline -- "${args[@]}"
