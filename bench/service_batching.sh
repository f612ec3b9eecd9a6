#!/usr/bin/env bash
# Continuous batching vs. one request at a time on the same kvmt-server binary, measured with
# kvmt-loadgen; prints one Markdown table row per concurrency and mode.
#
# Usage: bench/service_batching.sh MODEL_DIR INPUT [kvmt-loadgen flags...]
# Environment: BUILD (build), DURATION seconds per run (10), CONCURRENCY ("1 8 32 128"),
#   THREADS of each server (1), BATCH of the continuous server (32), MODES ("continuous alone").
#
# Two servers run side by side, one with --max-batch-size $BATCH and one with --max-batch-size 1
# (each segment decoded alone: one request at a time when requests hold one segment). Runs
# alternate between them, so that both see the same machine load; an idle server uses no CPU.
# Each server first gets 50 warm-up calls.
set -euo pipefail

model="$1"
input="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
duration="${DURATION:-10}"
concurrency="${CONCURRENCY:-1 8 32 128}"
threads="${THREADS:-1}"
batch="${BATCH:-32}"
modes="${MODES:-continuous alone}"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME MAX_BATCH: starts a server on a free port; sets $address.
start_server() {
  local log="$work/$1.log"
  "$build/bin/kvmt-server" --model "$model" --listen 127.0.0.1:0 --threads "$threads" \
    --max-batch-size "$2" --max-queued-segments 100000 --default-deadline-seconds 0 \
    2>"$log" &
  pids+=("$!")
  for _ in $(seq 600); do
    if grep -q " serving$" "$log"; then
      address="$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | cut -d' ' -f3)"
      return
    fi
    sleep 0.1
  done
  cat "$log" >&2
  exit 1
}

for mode in $modes; do
  if [ "$mode" = continuous ]; then start_server continuous "$batch"; continuous="$address"
  else start_server alone 1; alone="$address"; fi
  "$build/bin/kvmt-loadgen" --server "$address" --input "$input" --concurrency 8 --requests 50 \
    --duration 0 "$@" >/dev/null
done

echo "| concurrency | batching | requests/s | segments/s | target tokens/s | p50 ms | p95 ms | p99 ms | errors |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---|"
for c in $concurrency; do
  for mode in $modes; do
    if [ "$mode" = continuous ]; then server="$continuous"; label="continuous (max batch $batch)"
    else server="$alone"; label="one at a time"; fi
    "$build/bin/kvmt-loadgen" --server "$server" --input "$input" --concurrency "$c" \
      --duration "$duration" --json "$@" >"$work/report.json"
    /usr/bin/python3 - "$c" "$label" "$work/report.json" <<'PY'
import json, sys
c, label, path = sys.argv[1:4]
r = json.load(open(path))
lat = r["latency_ms"]
errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
print(f"| {c} | {label} | {r['requests_per_second']:.1f} | {r['segments_per_second']:.1f} | "
      f"{r['target_tokens_per_second']:.0f} | {lat['p50']:.1f} | {lat['p95']:.1f} | "
      f"{lat['p99']:.1f} | {errors} |")
PY
  done
done
