#!/usr/bin/env bash
# The sample migration against the sandbox, start to end, nothing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
BIN=${BIN:-target/release/invitesync}
WORK=target/demo
rm -rf "$WORK" && mkdir -p "$WORK"
cp samples/invites.csv "$WORK/invites.csv"
# Git keeps no file modes but the executable bit: make the sample credentials
# private, as invitesync asks of any secret file.
chmod 600 samples/secrets/*
# The sample config names port 8787; for another PORT, a copy that names it
# (its secret files still the samples', which it names relative to itself).
CONFIG=samples/sandbox.toml
if [ "$PORT" != 8787 ]; then
  CONFIG="$WORK/sandbox.toml"
  sed -e "s#127.0.0.1:8787#127.0.0.1:$PORT#" \
      -e "s#file = \"secrets/#file = \"$PWD/samples/secrets/#" samples/sandbox.toml >"$CONFIG"
fi

"$BIN" sandbox --port "$PORT" --seed samples/seed.csv >"$WORK/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true; wait $SANDBOX 2>/dev/null || true' EXIT
# Wait (at most 10 s) for the sandbox to listen.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$SANDBOX" 2>/dev/null; then cat "$WORK/sandbox.log"; exit 1; fi
  sleep 0.1
done

echo "== invitesync run $WORK/invites.csv --config $CONFIG"
set +e
"$BIN" run "$WORK/invites.csv" --config "$CONFIG" --state "$WORK/invitesync.db"
code=$?
set -e
echo "(exit code $code: 1 means some rows need attention, as the sample intends)"
[ "$code" -le 1 ] || exit "$code"

echo
echo "== first lines of $WORK/invites.results.csv"
head -n 12 "$WORK/invites.results.csv"
echo
echo "== rows to fix: $WORK/invites.failed.csv"
head -n 20 "$WORK/invites.failed.csv" 2>/dev/null || true

echo
echo "== the same command again: the ledger knows every applied change, so only the invites"
echo "   the file changes twice are sent again (their two changes, in file order)"
set +e
"$BIN" run "$WORK/invites.csv" --config "$CONFIG" --state "$WORK/invitesync.db" --quiet
set -e
