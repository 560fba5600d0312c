#!/usr/bin/env bash
# A Python client generated from the spec by openapi-python-client, used
# unmodified against a live server: scripts/python_client_test.py creates
# cases (JSON), dry-runs and imports a CSV (multipart) and reads them back.
#
#   bash scripts/python-client.sh [path/to/intake] [path/to/openapi.json]
#
# The client is generated into target/python-client/intake_client from
# openapi/openapi.json (by default). Every warning the generator prints is
# shown; one not in ALLOWED below fails the run, so a spec change that makes
# the generator skip an operation, a body or a schema does not pass unseen.
# The server runs on the embedded SQLite in a temporary folder, seeded with
# the demo data. openapi-python-client is installed from PyPI into a
# virtualenv under target/ once; the generated client runs in it too (its
# dependencies, httpx and attrs, are the generator's).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/intake}"
SPEC="${2:-openapi/openapi.json}"
VERSION="0.29.1"
VENV="${PYTHON_CLIENT_VENV:-${CARGO_TARGET_DIR:-target}/python-client-venv}"
OUT="${CARGO_TARGET_DIR:-target}/python-client"

if ! "$VENV/bin/openapi-python-client" --version 2>/dev/null | grep -q "version: $VERSION\$"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$VERSION"
fi

# The generator's settings, not the client's code:
# - the downloads (a zip, an xlsx workbook) are bytes to the client: the
#   generator reads only application/octet-stream, text/* and JSON answers
#   and would leave those answers out of the client otherwise;
# - ruff (a dependency of the generator) formats the client: it must be on
#   PATH, or the generator says it skipped it.
mkdir -p "$OUT"
cat >"$OUT/config.yaml" <<'EOF'
project_name_override: intake-client
package_name_override: intake_client
content_type_overrides:
  application/zip: application/octet-stream
  application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: application/octet-stream
EOF

# Warnings the run accepts, as "METHOD PATH: detail". The generator cannot
# send NDJSON (only JSON, form and octet-stream bodies): it leaves out the
# NDJSON variant of the two bulk bodies and generates the JSON one, which the
# test uses.
ALLOWED=(
  "POST /v1/cases: Unsupported content type application/x-ndjson"
  "PUT /v1/campaigns/{id}/customers: Unsupported content type application/x-ndjson"
)

rm -rf "$OUT/intake_client"
status=0
PATH="$(cd "$VENV/bin" && pwd):$PATH" COLUMNS=200 "$VENV/bin/openapi-python-client" generate \
  --path "$SPEC" --config "$OUT/config.yaml" --meta none --output-path "$OUT/intake_client" \
  >"$OUT/generate.log" 2>&1 || status=$?
if [[ $status -ne 0 || ! -f "$OUT/intake_client/client.py" ]]; then
  cat "$OUT/generate.log"
  echo "FAIL: openapi-python-client could not generate a client from $SPEC"
  exit 1
fi

# One line per warning: "WARNING parsing POST /v1/cases within cases." and
# its detail (the next non-empty line) as "POST /v1/cases: <detail>"; any
# other line past "Generating …" that is not JSON context is a warning too.
mapfile -t WARNINGS < <(awk '
  /^Generating / || /^Warning\(s\) encountered/ || /^If you believe this was a mistake/ { next }
  /^WARNING parsing / { op = $3 " " $4; want = 1; next }
  want && NF { gsub(/<openapi_python_client[^>]*>/, "?"); print op ": " $0; want = 0; next }
  /^[{}\[\] ]/ || /^$/ { next }
  { print $0 }
' "$OUT/generate.log")
unexpected=0
echo "-- openapi-python-client $VERSION: ${#WARNINGS[@]} warning(s) on $SPEC"
for w in "${WARNINGS[@]}"; do
  known=""
  for a in "${ALLOWED[@]}"; do [[ "$w" == "$a" ]] && known=1; done
  if [[ -n "$known" ]]; then
    echo "  allowed: $w"
  else
    echo "  UNEXPECTED: $w"
    unexpected=$((unexpected + 1))
  fi
done
if [[ $unexpected -ne 0 ]]; then
  cat "$OUT/generate.log"
  echo "FAIL: $unexpected unexpected generator warning(s) (the log is above and in $OUT/generate.log)"
  exit 1
fi

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export INTAKE_DATA_DIR="$DATA" INTAKE_BIND="127.0.0.1:$PORT" INTAKE_LOG=warn
export INTAKE_RATE_LIMIT_PER_SECOND=0
"$BIN" serve >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
healthy=""
for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && healthy=1 && break
  sleep 0.2
done
if [[ -z "$healthy" ]]; then
  cat "$DATA/server.log"
  echo "FAIL: $BIN serve did not answer /healthz on 127.0.0.1:$PORT"
  exit 1
fi
TOKEN="$("$BIN" seed-demo 2>"$DATA/seed.log")" || { cat "$DATA/seed.log"; echo "FAIL: $BIN seed-demo"; exit 1; }

echo "-- the generated client against the server"
status=0
INTAKE_URL="http://127.0.0.1:$PORT" INTAKE_TOKEN="$TOKEN" PYTHONPATH="$OUT" \
  "$VENV/bin/python" scripts/python_client_test.py || status=$?
if grep -q "panicked" "$DATA/server.log"; then
  cat "$DATA/server.log"
  echo "FAIL: the server panicked"
  exit 1
fi
exit "$status"
