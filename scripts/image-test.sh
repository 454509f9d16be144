#!/usr/bin/env bash
# `make image-test`: builds the Containerfile with podman on bases made here
# from Debian's packages, so that no container registry is needed, then
# proves the image:
#   - its user is not root, its entrypoint is invitesync and answers --version;
#   - no secret, state file, config or source file is in any of its layers;
#   - `invitesync sandbox` and a run of the sample against it, both from the
#     image, end as samples/expected.csv says, with a metrics file.
#
# The bases (cached under target/image/, so a second run only rebuilds the
# image):
#   localhost/invitesync-base:SUITE        `debootstrap --variant=minbase`, imported
#   localhost/invitesync-build-base:...    the same plus gcc, libc6-dev and
#                                          ca-certificates, and this machine's
#                                          Rust toolchain (`rustc --print
#                                          sysroot`) copied in, since Debian's
#                                          rustc is too old for edition 2024
# The build stage fetches crates from crates.io (podman's chroot isolation
# shares the host's network).
#
# `podman run` needs cgroups that not every machine delegates, so the image
# is run the way a runtime would run it, which works wherever this runs:
# its filesystem is exported (`podman create` + `podman export`) and its
# entrypoint started in it with `chroot --userspec` as the image's user, with
# the image's environment only and /proc and /dev mounted in a private mount
# namespace. Needs root (debootstrap, chroot, podman's storage).
#
# Environment: SUITE (bookworm), DEBIAN_MIRROR, IMAGE (the tag to build).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/target/image
suite=${SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
image=${IMAGE:-localhost/invitesync:$version}
nice=(nice -n 10)
mkdir -p "$work"

step() { echo "== $*" >&2; }
fail() {
  echo "image-test: FAILED: $*" >&2
  exit 1
}

# --- tools -------------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "run as root: debootstrap, chroot and podman's image storage need it"
missing=()
for tool in podman debootstrap python3 unshare; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  packages=()
  for tool in "${missing[@]}"; do
    case $tool in
      unshare) packages+=(util-linux) ;;
      python3) packages+=(python3-minimal) ;;
      *) packages+=("$tool") ;;
    esac
  done
  step "apt-get install ${packages[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
fi
command -v rustc >/dev/null 2>&1 || fail "rustc is needed: its toolchain is copied into the build base"

# --- bases ---------------------------------------------------------------------
# A minbase tree, made once: DIR [debootstrap options].
tree() {
  local dir=$1
  shift
  if [ ! -e "$dir.done" ]; then
    rm -rf "$dir"
    mkdir -p "$work/debs"
    step "debootstrap --variant=minbase $* $suite $dir"
    if ! "${nice[@]}" debootstrap --variant=minbase --cache-dir="$work/debs" "$@" \
      "$suite" "$dir" "$mirror" >"$dir.log" 2>&1; then
      tail -n 30 "$dir.log" >&2
      fail "debootstrap (see $dir.log)"
    fi
    # Package lists and caches are of no use in an image.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    touch "$dir.done"
  fi
}

# Imports DIR as TAG unless TAG already holds this tree.
import() {
  local dir=$1 tag=$2
  if [ "$dir.imported" -nt "$dir.done" ] && podman image exists "$tag"; then
    return
  fi
  step "podman import $dir $tag"
  tar -C "$dir" -c . | podman import - "$tag" >/dev/null
  touch "$dir.imported"
}

run_base=localhost/invitesync-base:$suite
tree "$work/run-root"
import "$work/run-root" "$run_base"

rust_version=$(rustc --version | awk '{print $2}')
build_tree=localhost/invitesync-debian-build:$suite
build_base=localhost/invitesync-build-base:$suite-rust-$rust_version
tree "$work/build-root" --include=ca-certificates,gcc,libc6-dev
import "$work/build-root" "$build_tree"
if ! { [ "$work/build-root.imported" -ot "$work/build-base.done" ] && podman image exists "$build_base"; }; then
  sysroot=$(rustc --print sysroot)
  stage=$work/toolchain
  rm -rf "$stage"
  mkdir -p "$stage/rust/bin"
  # cargo and rustc with their libraries and the standard library (the
  # documentation and the other tools stay out).
  cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$stage/rust/bin/"
  cp -a "$sysroot/lib" "$stage/rust/"
  cat >"$stage/Containerfile" <<EOF
FROM $build_tree
COPY rust /usr/local/rust
RUN ln -s ../rust/bin/cargo /usr/local/bin/cargo && ln -s ../rust/bin/rustc /usr/local/bin/rustc \\
 && cargo --version && rustc --version
EOF
  step "podman build $build_base (Debian $suite + rustc $rust_version)"
  "${nice[@]}" podman build --isolation chroot --pull=never -t "$build_base" -f "$stage/Containerfile" "$stage" >&2
  rm -rf "$stage"
  touch "$work/build-base.done"
fi

# --- the image -------------------------------------------------------------------
step "make image (podman build --isolation chroot, on the local bases)"
opts="--isolation chroot --pull=never"
# The machine's CA bundle for cargo, should crates.io be reached through a
# TLS-inspecting proxy that Debian's bundle does not know (mounted for the
# build only; the image keeps Debian's bundle).
host_ca=/etc/ssl/certs/ca-certificates.crt
if [ -s "$host_ca" ]; then
  opts="$opts -v $host_ca:/run/build-ca.crt:ro --build-arg CARGO_HTTP_CAINFO=/run/build-ca.crt"
fi
IMAGE=$image CONTAINER_ENGINE=podman BUILD_IMAGE=$build_base RUN_IMAGE=$run_base \
  IMAGE_BUILD_OPTS="$opts" "${nice[@]}" bash scripts/image.sh

inspect() { podman image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
entrypoint=$(inspect '{{index .Config.Entrypoint 0}}')
step "user $user, entrypoint $entrypoint"
case ${user%%:*} in
  "" | 0 | root) fail "the image runs as root (USER is '$user')" ;;
esac
[ "$(basename "$entrypoint")" = invitesync ] || fail "the entrypoint is $entrypoint, not invitesync"
uid=${user%%:*}
gid=${user#*:}
[ "$gid" != "$user" ] || gid=$uid

# --- no secret in any layer ----------------------------------------------------------
step "the files of every layer"
rm -rf "$work/layers"
podman save --format docker-dir -o "$work/layers" "$image" >/dev/null
: >"$work/layers.txt"
for layer in "$work"/layers/*; do
  tar -tf "$layer" >>"$work/layers.txt" 2>/dev/null || true
done
rm -rf "$work/layers"
[ -s "$work/layers.txt" ] || fail "no layer could be listed"
# Secrets (the samples' credential files, keys, env files), state and results
# files, configs, and the build context (sources, git, target).
forbidden='(^|/)(secrets?|[^/]*_token|[^/]*_key|[^/]*\.key|[^/]*\.env|\.git|target|[^/]*\.rs|Cargo\.(toml|lock)|[^/]*\.toml|[^/]*\.db(-wal|-shm|\.lock)?|[^/]*\.results\.csv)(/|$)'
if grep -E "$forbidden" "$work/layers.txt" | grep -v -E '^(\./)?(usr/share|usr/lib|var/lib/dpkg|etc/(apt|ssl/certs))/' >"$work/forbidden.txt"; then
  cat "$work/forbidden.txt" >&2
  fail "files that must not be in the image (listed above)"
fi
if inspect '{{range .Config.Env}}{{println .}}{{end}}' | grep -i -E '^[^=]*(token|secret|password|_key)[^=]*=' >&2; then
  fail "the image's environment names a secret (above)"
fi
echo "no secret, state, config or source file in $(wc -l <"$work/layers.txt") layer entries" >&2

# --- run it from its own filesystem ----------------------------------------------------
step "podman create + podman export"
rootfs=$work/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"
ctr=$(podman create "$image")
podman export "$ctr" | tar -C "$rootfs" -x
podman rm "$ctr" >/dev/null
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')

# Runs the image's entrypoint with ARGS in its filesystem, as its user, with
# its environment only. It replaces the calling shell (every step `exec`s the
# next), so call it in a subshell: `$(...)`, `(...)` or `... &`, where `$!`
# is then the entrypoint's own process.
in_image() {
  exec unshare --mount --propagation private -- sh -c '
    root=$1; user=$2; shift 2
    mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" || exit 125
    exec "$@"' sh "$rootfs" "$user" \
    env -i "${image_env[@]}" chroot --userspec="$uid:$gid" "$rootfs" "$entrypoint" "$@"
}

step "invitesync --version"
got=$(in_image --version)
echo "$got" >&2
[ "$got" = "invitesync $version" ] || fail "--version printed '$got'"

step "invitesync sandbox, then a run of the sample against it, both from the image"
t=$rootfs/image-test
mkdir -p "$t/secrets"
cp samples/invites.csv samples/seed.csv "$t/"
cp samples/secrets/* "$t/secrets/"
port=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    port=$p
    break
  fi
done
[ -n "$port" ] || fail "no free port"
sed "s#http://127.0.0.1:8787#http://127.0.0.1:$port#" samples/sandbox.toml >"$t/sandbox.toml"
chown -R "$uid:$gid" "$t"
chmod 0700 "$t/secrets"
chmod 0600 "$t"/secrets/*

in_image sandbox --port "$port" --seed /image-test/seed.csv >"$work/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill "$sandbox" 2>/dev/null || true; wait "$sandbox" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$sandbox" 2>/dev/null || {
    cat "$work/sandbox.log" >&2
    fail "the sandbox did not start"
  }
  sleep 0.1
done

set +e
(in_image run /image-test/invites.csv --config /image-test/sandbox.toml \
  --state /image-test/invitesync.db --summary-json /image-test/summary.json \
  --metrics-file /image-test/invitesync.prom --log-interval 5s 2>"$work/run.log")
code=$?
set -e
tail -n 12 "$work/run.log" >&2
[ "$code" = 1 ] || fail "the sample's run exited $code; it must exit 1 (some rows are invalid or rejected on purpose)"
python3 - "$t/invites.results.csv" samples/expected.csv <<'EOF' || fail "the results differ from samples/expected.csv"
import csv, sys
got = [r["outcome"] for r in csv.DictReader(open(sys.argv[1], newline=""))]
want = [r["outcome"] for r in csv.DictReader(open(sys.argv[2], newline=""))]
wrong = [(i + 2, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
if len(got) != len(want) or wrong:
    print(f"{len(got)} rows, {len(want)} expected; line, got, expected: {wrong[:10]}", file=sys.stderr)
    sys.exit(1)
print(f"{len(got)} rows end as samples/expected.csv says", file=sys.stderr)
EOF
grep -q '^invitesync_rows_total{' "$t/invitesync.prom" || fail "no metrics file from the run"
if command -v promtool >/dev/null 2>&1; then
  promtool check metrics <"$t/invitesync.prom" || fail "promtool check metrics"
fi
echo "image-test: $image passed" >&2
