#!/usr/bin/env bash
# Runs the cargo-fuzz targets one after another, each for SECONDS (default
# 1800), new inputs in fuzz/work/<target>, the committed seeds as they are.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# A missing nightly toolchain or cargo-fuzz is reported and the script ends
# with 0 (fuzzing needs them; nothing else does). A crash, a hang (10 s for
# one input) or more than 1 GiB of memory is a finding: libFuzzer saves the
# input under fuzz/artifacts/<target>/ and the script ends with 1.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-1800}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv_table case_json customer_parsers)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain list); fuzzing skipped." \
       "Install it with: rustup toolchain install nightly" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed; fuzzing skipped." \
       "Install it with: cargo install cargo-fuzz" >&2
  exit 0
fi

cargo +nightly fuzz build -O
status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/work/$target"
  log="fuzz/work/$target.log"
  echo "fuzz: $target for ${seconds}s (log: $log)"
  if cargo +nightly fuzz run -O "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    rss=$(grep -m1 '^stat::peak_rss_mb' "$log" | awk '{print $2}')
    echo "fuzz: $target passed: ${execs:-?} inputs run, peak RSS ${rss:-?} MB"
  else
    echo "fuzz: $target FOUND A PROBLEM; the end of its log:" >&2
    tail -n 30 "$log" >&2
    status=1
  fi
done
exit $status
