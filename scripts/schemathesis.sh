#!/usr/bin/env bash
# Property-based API tests against a live server: schemathesis generates
# requests from openapi/openapi.json and fails on any 5xx and on any answer
# that breaks the documented schema (status, content type, body).
#
#   bash scripts/schemathesis.sh [path/to/intake] [examples per operation]
#
# The server runs on the embedded SQLite in a temporary folder, seeded with
# the demo data; one pass covers the admin API with an admin token, one the
# integration API with the demo integration's token (every scope).
# schemathesis is installed from PyPI into a virtualenv under target/ once.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/intake}"
EXAMPLES="${2:-8}"
VERSION="4.32.5"
VENV="${SCHEMATHESIS_VENV:-${CARGO_TARGET_DIR:-target}/schemathesis-venv}"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export INTAKE_DATA_DIR="$DATA" INTAKE_BIND="127.0.0.1:$PORT" INTAKE_LOG=warn
# The generated requests come fast: no rate limit in the way.
export INTAKE_RATE_LIMIT_PER_SECOND=0
"$BIN" serve >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
ADMIN="$("$BIN" token --admin 2>/dev/null)"
INTEGRATION="$("$BIN" seed-demo 2>/dev/null)"

run() {
  SCHEMATHESIS_HOOKS=scripts.schemathesis_hooks PYTHONPATH=. "$VENV/bin/schemathesis" run \
    openapi/openapi.json --url "http://127.0.0.1:$PORT" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$EXAMPLES" --seed 1 --no-color "$@"
}

echo "-- admin API"
run -H "Authorization: Bearer $ADMIN" --include-path-regex '^/v1/admin'
echo "-- integration API and operations"
run -H "Authorization: Bearer $INTEGRATION" --exclude-path-regex '^/v1/admin'
if grep -q "panicked" "$DATA/server.log"; then
  cat "$DATA/server.log"
  echo "FAIL: the server panicked"
  exit 1
fi
