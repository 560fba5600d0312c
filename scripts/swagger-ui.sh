#!/usr/bin/env bash
# Swagger UI (/docs/, its assets served by intake itself) in headless
# Chromium: the page loads with no failed request and no console error and
# nothing fetched from elsewhere, the integrators' tags come before admin and
# operations, Authorize takes the demo integration's token, and "Try it out"
# on POST /v1/cases (default example) answers 201 and on GET /v1/me 200.
# A full-page screenshot lands in target/swagger-ui.png.
#
#   bash scripts/swagger-ui.sh [path/to/intake]
#
# Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and
# playwright-core from tools/ (npm ci --prefix tools when missing); no
# browser is ever downloaded.
# The server runs on the embedded SQLite in a temporary folder, seeded with
# the demo data (intake seed-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/intake}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SCREENSHOT="${SWAGGER_UI_SCREENSHOT:-${CARGO_TARGET_DIR:-target}/swagger-ui.png}"

[[ -x "$BIN" ]] || { echo "FAIL: no intake binary at $BIN (cargo build)"; exit 1; }
[[ -x "$CHROMIUM" ]] || {
  echo "FAIL: no Chromium at $CHROMIUM (apt-get install -y --no-install-recommends chromium)"
  exit 1
}
# playwright-core is pinned in tools/package.json, installed with `npm ci`
# (from the npm registry) when tools/node_modules lacks it.
if [[ ! -f tools/node_modules/playwright-core/package.json ]]; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi
mkdir -p "$(dirname "$SCREENSHOT")"

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export INTAKE_DATA_DIR="$DATA" INTAKE_BIND="127.0.0.1:$PORT" INTAKE_LOG=warn
# Swagger UI's requests come in a burst: no rate limit in the way.
export INTAKE_RATE_LIMIT_PER_SECOND=0
"$BIN" serve >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || {
  cat "$DATA/server.log"
  echo "FAIL: the server did not come up on 127.0.0.1:$PORT"
  exit 1
}
TOKEN="$("$BIN" seed-demo 2>/dev/null)"
[[ -n "$TOKEN" ]] || { echo "FAIL: intake seed-demo printed no token"; exit 1; }

status=0
CHROMIUM="$CHROMIUM" node tools/swagger-ui.mjs "http://127.0.0.1:$PORT/" "$TOKEN" "$SCREENSHOT" || status=$?
if grep -q "panicked" "$DATA/server.log"; then
  cat "$DATA/server.log"
  echo "FAIL: the server panicked"
  exit 1
fi
exit "$status"
