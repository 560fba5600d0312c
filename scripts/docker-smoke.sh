#!/usr/bin/env bash
# Smoke checks of the container image.
#
#   scripts/docker-smoke.sh context   (a) the build stage's context is enough:
#       the files of the Dockerfile's build-stage COPY lines, copied into an
#       empty folder, pass `cargo metadata --locked` and
#       `cargo check --locked --bin intake` (the dependency layer's subset
#       with its stub sources, then the whole set). No Docker needed; reuses
#       $CARGO_TARGET_DIR (default: ./target), so only intake itself is checked.
#   scripts/docker-smoke.sh image     (b) with a Docker daemon: the runtime
#       stage built on a debootstrapped Debian base (no registry needed) with
#       a binary built on the host ($INTAKE_BINARY, default
#       $CARGO_TARGET_DIR/release/intake), run with a volume: healthy, an admin
#       token minted inside it, a group created, restarted, the group found.
#       INTAKE_IMAGE=intake:latest: run that image (`docker build .`'s) instead.
#   scripts/docker-smoke.sh           (a), then (b) when a daemon answers
#       (skipped with a message otherwise).
#
# (b) makes the base image `intake-smoke-base:bookworm` once (debootstrap, as
# root; mirror: $INTAKE_SMOKE_MIRROR or the first of apt's sources) and keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

TMP="$(mktemp -d)"
CONTAINER_STARTED=""
on_exit() {
  rm -rf "$TMP"
  [[ -z "$CONTAINER_STARTED" ]] || cleanup_container
}
trap on_exit EXIT

say() { printf 'docker-smoke: %s\n' "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

# The build stage's COPY lines (without --from), one per line, arguments only;
# with `deps`, only those before its first RUN (the dependency layer).
build_copies() {
  awk -v only_deps="${1:-}" '
    /^[[:space:]]*FROM[[:space:]]/ { in_build = (tolower($0) ~ /[[:space:]]as[[:space:]]+build[[:space:]]*$/); next }
    in_build && only_deps != "" && /^[[:space:]]*RUN[[:space:]]/ { in_build = 0; next }
    in_build && /^[[:space:]]*COPY[[:space:]]/ && $0 !~ /--from/ { $1 = ""; sub(/^[[:space:]]+/, ""); print }
  ' Dockerfile
}

# Copies the sources of COPY lines (stdin) into $1 as the build stage gets them.
copy_context() {
  local into="$1" line words dest src n=0
  while IFS= read -r line; do
    [[ "$line" == *"--"* ]] && fail "COPY with flags is not understood here: COPY $line"
    read -r -a words <<<"$line"
    ((${#words[@]} >= 2)) || fail "COPY needs a source and a destination: COPY $line"
    dest="${words[-1]}"
    for src in "${words[@]:0:${#words[@]}-1}"; do
      [[ -e "$src" ]] || fail "COPY $line: $src is not in the build context"
      if [[ -d "$src" ]]; then
        # A folder's contents go into the destination (Docker's rule).
        mkdir -p "$into/$dest"
        cp -a "$src/." "$into/$dest/"
      elif [[ "$dest" == */ ]]; then
        mkdir -p "$into/$dest"
        cp -a "$src" "$into/$dest"
      else
        mkdir -p "$(dirname "$into/$dest")"
        cp -a "$src" "$into/$dest"
      fi
      n=$((n + 1))
    done
  done
  ((n > 0)) || fail "no COPY line found in the build stage of the Dockerfile"
}

check_context() {
  local started tmp
  started=$(date +%s)
  tmp="$TMP/context"
  say "(a) the dependency layer: $(build_copies deps | tr '\n' ';') + stub src/main.rs, src/lib.rs"
  mkdir -p "$tmp/deps/src"
  build_copies deps | copy_context "$tmp/deps"
  echo 'fn main() {}' >"$tmp/deps/src/main.rs"
  touch "$tmp/deps/src/lib.rs"
  # `cargo metadata` alone does not look for the targets' files (benches).
  (cd "$tmp/deps" && cargo metadata --locked --format-version 1 >/dev/null &&
    cargo check --locked --quiet --bin intake) ||
    fail "the dependency layer's COPY set and stubs do not build"
  say "(a) the build stage: $(build_copies | tr '\n' ';')"
  build_copies | copy_context "$tmp/full"
  # As in the Dockerfile: the copies keep their times, older than the stub
  # check that just ran on the same target dir; newer ones make cargo redo it.
  touch "$tmp/full/src/main.rs" "$tmp/full/src/lib.rs" "$tmp/full/build.rs"
  (cd "$tmp/full" && cargo metadata --locked --format-version 1 >/dev/null) ||
    fail "the manifest does not load from the build stage's COPY set"
  (cd "$tmp/full" && cargo check --locked --quiet --bin intake) ||
    fail "cargo check --locked --bin intake fails on the build stage's COPY set"
  say "(a) passed in $(($(date +%s) - started)) s"
}

apt_mirror() {
  if [[ -n "${INTAKE_SMOKE_MIRROR:-}" ]]; then
    echo "$INTAKE_SMOKE_MIRROR"
    return
  fi
  local found
  found="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { print $2; exit }')"
  [[ -n "$found" ]] || found="$(awk '/^deb / && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)"
  echo "${found:-http://deb.debian.org/debian}"
}

BASE=intake-smoke-base:bookworm
NAME=intake-smoke
VOLUME=intake-smoke-data

base_image() {
  if docker image inspect "$BASE" >/dev/null 2>&1; then
    say "(b) base image $BASE already made"
    return
  fi
  command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install -y debootstrap)"
  [[ "$(id -u)" == 0 ]] || fail "debootstrap needs root to make $BASE"
  local root started mirror
  started=$(date +%s)
  mirror="$(apt_mirror)"
  root="$TMP/rootfs"
  say "(b) debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    {
      tail -20 "$root.log"
      fail "debootstrap failed"
    }
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$root"
  say "(b) base image $BASE made in $(($(date +%s) - started)) s"
}

cleanup_container() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$VOLUME" >/dev/null 2>&1 || true
}

wait_healthy() {
  local status=""
  for _ in $(seq 1 60); do
    status="$(docker inspect -f '{{.State.Health.Status}}' "$NAME" 2>/dev/null || true)"
    [[ "$status" == healthy ]] && return 0
    [[ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" == true ]] || break
    sleep 1
  done
  docker logs --tail 30 "$NAME" || true
  fail "the container did not become healthy (last status: ${status:-none})"
}

check_image() {
  local started ctx port token group status image
  started=$(date +%s)
  if [[ -n "${INTAKE_IMAGE:-}" ]]; then
    # An image built by `docker build .` itself: only run it.
    image="$INTAKE_IMAGE"
    docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image"
  else
    local binary="${INTAKE_BINARY:-$CARGO_TARGET_DIR/release/intake}"
    [[ -x "$binary" ]] || fail "no binary at $binary (cargo build --release --bin intake, or set INTAKE_BINARY)"
    base_image
    ctx="$TMP/image"
    mkdir -p "$ctx/empty" "$ctx/image"
    # The Dockerfile's runtime stage alone (nothing from the context) …
    docker build --quiet --target runtime-base --build-arg RUNTIME_IMAGE="$BASE" \
      -t intake-smoke-runtime:latest -f Dockerfile "$ctx/empty" >/dev/null ||
      fail "the runtime-base stage does not build"
    # … plus the host's binary, where the last stage copies the built one.
    cp "$binary" "$ctx/image/intake"
    printf 'FROM intake-smoke-runtime:latest\nCOPY intake /usr/local/bin/intake\n' >"$ctx/image/Dockerfile"
    docker build --quiet -t "$NAME:latest" "$ctx/image" >/dev/null || fail "the smoke image does not build"
    image="$NAME:latest"
  fi
  say "(b) image $image ($(docker image inspect -f '{{.Size}}' "$image") bytes)"

  CONTAINER_STARTED=1
  cleanup_container
  docker volume create "$VOLUME" >/dev/null
  docker run -d --name "$NAME" -v "$VOLUME:/var/lib/intake/data" -p 127.0.0.1::8080 "$image" >/dev/null
  wait_healthy
  port="$(docker port "$NAME" 8080/tcp | head -n1 | sed 's/.*://')"
  [[ "$(docker exec "$NAME" id -u)" != 0 ]] || fail "the container runs as root"
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || fail "GET /healthz from the host"
  say "(b) healthy on 127.0.0.1:$port"

  token="$(docker exec "$NAME" intake token --admin 2>/dev/null)" || fail "intake token --admin inside the container"
  group="$(curl -fsS -X POST "http://127.0.0.1:$port/v1/admin/groups" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"docker smoke"}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
  [[ -n "$group" ]] || fail "POST /v1/admin/groups did not answer an id"
  say "(b) group $group created"

  docker stop "$NAME" >/dev/null
  docker start "$NAME" >/dev/null
  wait_healthy
  port="$(docker port "$NAME" 8080/tcp | head -n1 | sed 's/.*://')"
  status="$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/admin/groups/$group" \
    -H "Authorization: Bearer $token")"
  [[ "$status" == 200 ]] || fail "after a restart, GET /v1/admin/groups/$group answered $status"
  say "(b) after a restart the group is still there (the token too: its secret is in the volume)"
  say "(b) passed in $(($(date +%s) - started)) s"
}

case "${1:-all}" in
context) check_context ;;
image) check_image ;;
all)
  check_context
  if docker info >/dev/null 2>&1; then
    check_image
  else
    say "(b) skipped: no Docker daemon answers (start one: apt-get install -y docker.io debootstrap; dockerd &)"
  fi
  ;;
*) fail "usage: $0 [context|image|all]" ;;
esac
