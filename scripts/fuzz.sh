#!/usr/bin/env bash
# Usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]
# Builds the libFuzzer target fuzz_TARGET (tests/fuzz/TARGET_fuzzer.cc; clang, ASan+UBSan, in
# build-asan/ as scripts/test.sh --sanitize does) and fuzzes it for SECONDS, starting from the
# seeds in tests/fuzz/corpus/TARGET/ and what earlier runs found (build-asan/fuzz/TARGET/corpus/).
# `all` runs every target, two at a time. At the end it prints, per target, the executions and
# the coverage; a crash's input is left in build-asan/fuzz/TARGET/ and the exit status is
# libFuzzer's. A crash, once fixed, keeps its input in tests/fuzz/regressions/TARGET/ (ctest runs
# those in every build). Run scripts/setup.sh first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/sanitizer_builds.sh"
if [ "$#" -lt 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]" >&2
  echo "targets: $(cd "$root/tests/fuzz" && ls ./*_fuzzer.cc | sed 's|./||; s|_fuzzer.cc||' | tr '\n' ' ')" >&2
  exit 2
fi
target="$1"
seconds="$2"
shift 2
if [ "$target" = all ]; then
  targets=($(cd "$root/tests/fuzz" && ls ./*_fuzzer.cc | sed 's|./||; s|_fuzzer.cc||'))
else
  [ -f "$root/tests/fuzz/${target}_fuzzer.cc" ] || { echo "[fuzz] no target '$target'" >&2; exit 2; }
  targets=("$target")
fi

configure_asan_build
cmake --build "$asan_build" -j"$(nproc)" $(printf -- '--target fuzz_%s ' "${targets[@]}")

# One target: its output goes to build-asan/fuzz/TARGET/log; the summary line to stdout.
run_one() {
  local name="$1" work="$asan_build/fuzz/$1"
  shift
  mkdir -p "$work/corpus"
  local extra=()
  [ -f "$root/tests/fuzz/$name.dict" ] && extra+=("-dict=$root/tests/fuzz/$name.dict")
  # The server logs a line per call to stderr; libFuzzer's and the sanitizers' reports stay.
  [ "$name" = service_request ] && extra+=("-close_fd_mask=2")
  local status=0
  "$asan_build/bin/fuzz_$name" "$work/corpus" "$root/tests/fuzz/corpus/$name" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$work/" "${extra[@]}" "$@" >"$work/log" 2>&1 || status=$?
  local runs speed coverage
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)"
  coverage="$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 | cut -d' ' -f2)"
  echo "[fuzz] $name: ${seconds} s, ${runs:-?} executions (${speed:-?}/s), coverage ${coverage:-?} edges, corpus $(ls "$work/corpus" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then
    echo "[fuzz] $name FAILED (exit $status): see $work/log; the input is in $work/" >&2
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$work/log" | head -n 20 >&2 || true
  fi
  return "$status"
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for name in "${targets[@]:i:2}"; do
    run_one "$name" "$@" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
done
exit "$failed"
