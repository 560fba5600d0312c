#!/usr/bin/env bash
# The Postman collection against a live server, with newman: every request of
# postman/intake.postman_collection.json in order, failing on any failed
# assertion.
#
#   bash scripts/newman.sh [path/to/intake [newman options...]]
#
# First it checks that the committed collection is what postman/generate.mjs
# makes of openapi/openapi.json and postman/flow.json. The server runs on the
# embedded SQLite in a temporary folder with the demo data (`seed-demo`);
# the run gets a fresh admin token. newman comes from tools/ (npm ci, once,
# when tools/node_modules is missing); nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/intake}"
shift || true
[[ -x "$BIN" ]] || { echo "FAIL: no intake binary at $BIN (cargo build, or pass its path)"; exit 1; }

if ! node postman/generate.mjs --check; then
  echo "FAIL: the committed Postman collection is not what postman/generate.mjs makes of openapi/openapi.json and postman/flow.json (above): fix postman/flow.json if need be, run 'node postman/generate.mjs' and commit postman/"
  exit 1
fi

NEWMAN=tools/node_modules/.bin/newman
if [[ ! -x "$NEWMAN" ]]; then
  npm ci --prefix tools --no-audit --no-fund
fi

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export INTAKE_DATA_DIR="$DATA" INTAKE_BIND="127.0.0.1:$PORT" INTAKE_LOG=warn
# The requests come back to back: no rate limit in the way.
export INTAKE_RATE_LIMIT_PER_SECOND=0
"$BIN" serve >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
up=""
for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.2
done
if [[ -z "$up" ]]; then
  cat "$DATA/server.log"
  echo "FAIL: the server did not answer /healthz on 127.0.0.1:$PORT"
  exit 1
fi
ADMIN="$("$BIN" token --admin 2>/dev/null)"
# The demo integration's token: the collection replaces it with the token it
# mints for its own integration, but the demo data is there as the README's
# examples expect.
DEMO="$("$BIN" seed-demo 2>/dev/null)"

status=0
"$NEWMAN" run postman/intake.postman_collection.json \
  -e postman/intake.postman_environment.json \
  --working-dir postman \
  --env-var "baseUrl=http://127.0.0.1:$PORT" \
  --env-var "adminToken=$ADMIN" \
  --env-var "token=$DEMO" \
  --timeout-request 30000 \
  --color off --disable-unicode \
  --reporters cli "$@" || status=$?

if grep -q "panicked" "$DATA/server.log"; then
  cat "$DATA/server.log"
  echo "FAIL: the server panicked"
  exit 1
fi
if [[ "$status" != 0 ]]; then
  echo "FAIL: newman reported failures (exit $status)"
  exit "$status"
fi
echo "newman: every request and assertion passed"
