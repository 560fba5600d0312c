#!/usr/bin/env bash
# Lints openapi/openapi.json with Redocly (recommended ruleset) and Spectral
# (spectral:oas): any error fails; warnings are printed.
#
#   bash scripts/lint-spec.sh [path/to/openapi.json]
#
# The tools are pinned in tools/package.json and installed with `npm ci`
# (from the npm registry) when tools/node_modules is missing. Nothing is
# fetched at run time: Redocly's telemetry and update check are off.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC="${1:-openapi/openapi.json}"

if [[ ! -x tools/node_modules/.bin/redocly || ! -x tools/node_modules/.bin/spectral ]]; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

echo "-- redocly lint (recommended)"
status=0
out="$(tools/node_modules/.bin/redocly lint "$SPEC" --config openapi/redocly.yaml --format=stylish 2>&1)" || status=$?
# Without the banner (Node.js version notices) and blank lines.
printf '%s\n' "$out" | grep -v -e '^\s*$' -e '[╔║╚]' || true
[[ "$status" == 0 ]] || { echo "FAIL: redocly lint found errors"; exit 1; }

echo "-- spectral lint (spectral:oas)"
tools/node_modules/.bin/spectral lint "$SPEC" --ruleset openapi/.spectral.yaml --fail-severity error \
  || { echo "FAIL: spectral lint found errors"; exit 1; }
