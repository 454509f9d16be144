#!/usr/bin/env bash
# The whole test suite, then one closing line with the totals over every test
# binary (cargo prints one "test result" line per binary, the last of which is
# the doc tests').
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
log=target/test-output.log
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "test: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
