#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each and prints one line per target:
# executions, executions per second, corpus size, crashes. Exits non-zero when a target
# crashed; the crashing input is kept in fuzz/artifacts/TARGET/.
# Usage: fuzz/run.sh SECONDS [TARGET...]
#
# cargo fuzz needs the compiler's sanitizer-coverage flags, which only nightly Rust accepts.
# This machine has the stable toolchain alone, so RUSTC_BOOTSTRAP=1 lets stable take them
# (the fuzz build only; nothing else is built that way).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
export RUSTC_BOOTSTRAP=1
if [ $# -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
else
  targets=("$@")
fi
cargo fuzz build
failed=0
printf '%-16s %12s %10s %8s %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  out=fuzz/target/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$out" "$artifacts"
  log=$(mktemp)
  status=ok
  if ! cargo fuzz run "$t" "$out" "fuzz/corpus/$t" -- -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    status="CRASH (see $artifacts and the log below)"
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  size=$(find "$out" -type f | wc -l)
  printf '%-16s %12s %10s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" "$status"
  if [ "$status" != ok ]; then tail -n 40 "$log"; fi
  rm -f "$log"
done
exit "$failed"
