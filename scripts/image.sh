#!/usr/bin/env bash
# `make image`: builds the Containerfile with podman, or with docker where a
# Docker engine answers. The bases are build arguments; set BUILD_IMAGE and
# RUN_IMAGE to use a mirror or a locally made base (scripts/image-test.sh
# makes both from Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
IMAGE=${IMAGE:-localhost/invitesync:$version}

if [ -n "${CONTAINER_ENGINE:-}" ]; then
  engine=$CONTAINER_ENGINE
elif command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
else
  echo "image: neither podman nor a running Docker engine was found; install podman (apt-get install podman)" >&2
  exit 2
fi

args=(build -f Containerfile -t "$IMAGE")
[ -n "${BUILD_IMAGE:-}" ] && args+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
[ -n "${RUN_IMAGE:-}" ] && args+=(--build-arg "RUN_IMAGE=$RUN_IMAGE")
# Extra options for the engine, e.g. `--isolation chroot --pull=never` for
# podman where containers cannot get their own cgroups.
# shellcheck disable=SC2206
[ -n "${IMAGE_BUILD_OPTS:-}" ] && args+=($IMAGE_BUILD_OPTS)

echo "== $engine ${args[*]} ." >&2
"$engine" "${args[@]}" .
echo "image: built $IMAGE" >&2
