#!/usr/bin/env bash
# Usage: scripts/soak.sh MINUTES
# Soak test: kvmt-server on the real transliteration model (../shared) under four kvmt-loadgen
# runs at once for MINUTES, on words of a test set spelled in Arabic letters (bench/
# arabic_letters.py), one line in ten eight words long:
#   unary       3 segments per call, no deadline
#   stream      2 segments per call, greedy (tokens streamed), no deadline
#   deadlines   4 segments per call, deadlines drawn from 5-300 ms, 30% cancelled by the client
#   cancels     streams, greedy, half of them cancelled (the client leaves) within 300 ms
# Every result any of them receives must equal kvmt-translate's output for its line (beam 1 for
# the greedy runs). The first fifth of the run (20 s to 2 min) is warm-up. It passes when:
#   - the server's RSS at the end (the largest sample of the last tenth) is less than 5% above
#     its RSS at the end of the warm-up;
#   - once the load stops, the K/V pool is empty: nothing used, reserved, queued or running
#     (the server runs with --source-cache-mb 0, so nothing may stay in the pool);
#   - unary and stream have no error at all, deadlines and cancels none but DEADLINE_EXCEEDED
#     and CANCELLED, and no run a WRONG_TRANSLATION;
#   - the server drains on SIGTERM and exits 0.
# Builds what it needs in build/ (run scripts/setup.sh first); writes build/soak/: the server's
# log, rss.csv (seconds, KiB), the four JSON reports and summary.txt. Exit status 0: passed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$#" -ne 1 ] || ! [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: scripts/soak.sh MINUTES" >&2
  exit 2
fi
seconds="$(python3 -c "print(max(10, round(float('$1') * 60)))")"
warmup="$(python3 -c "print(min(120, max(20, $seconds // 5)))")"
model="$(cd "$root/.." && pwd)/shared/models/ct2-v2-aren-transliteration"
build="$root/build"
out="$build/soak"
bin="$build/bin"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target kvmt-server kvmt-loadgen kvmt-translate >/dev/null
rm -rf "$out"
mkdir -p "$out"

# Input: test-set words, and every tenth line eight of them (longer sources and outputs).
/usr/bin/python3 "$root/bench/arabic_letters.py" --shape words >"$out/words.txt"
awk 'NR <= 3000 { words[NR] = $0 } END { for (i = 1; i <= 3000 && i <= NR; i++) {
       line = words[i];
       if (i % 10 == 0) for (j = 1; j < 8 && i + j <= 3000; j++) line = line " " words[i + j];
       print line } }' "$out/words.txt" >"$out/input.txt"
"$bin/kvmt-translate" --model "$model" --input "$out/input.txt" --output "$out/expected.txt" \
  2>"$out/expected.log"
"$bin/kvmt-translate" --model "$model" --beam-size 1 --input "$out/input.txt" \
  --output "$out/expected_greedy.txt" 2>>"$out/expected.log"

"$bin/kvmt-server" --model "$model" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --threads 1 --cache-memory-mb 16 --source-cache-mb 0 2>"$out/server.log" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q " serving" "$out/server.log" && break
  kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/server.log" | head -n 1)"
metrics_port="$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out/server.log" |
  head -n 1)"
[ -n "$port" ] && [ -n "$metrics_port" ] || { cat "$out/server.log" >&2; exit 1; }
echo "[soak] kvmt-server (pid $server) on port $port, $seconds s, warm-up $warmup s"

load() {  # NAME [kvmt-loadgen flags...]
  local name="$1"
  shift
  "$bin/kvmt-loadgen" --server "127.0.0.1:$port" --input "$out/input.txt" --duration "$seconds" \
    --json "$@" >"$out/$name.json" 2>"$out/$name.log"
}
load unary --concurrency 4 --segments-per-request 3 --expected "$out/expected.txt" &
pids=("$!")
load stream --concurrency 2 --segments-per-request 2 --stream --beam-size 1 \
  --expected "$out/expected_greedy.txt" &
pids+=("$!")
load deadlines --concurrency 4 --segments-per-request 4 --deadline-ms 5 --deadline-ms-max 300 \
  --cancel-fraction 0.3 --cancel-within-ms 300 --seed 7 --expected "$out/expected.txt" &
pids+=("$!")
load cancels --concurrency 2 --stream --beam-size 1 --cancel-fraction 0.5 --cancel-within-ms 300 \
  --seed 11 --expected "$out/expected_greedy.txt" &
pids+=("$!")

# The server's RSS every 2 s while the load runs.
start=$SECONDS
while [ $((SECONDS - start)) -lt "$seconds" ]; do
  echo "$((SECONDS - start)) $(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")" >>"$out/rss.csv"
  sleep 2
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" -eq 0 ] || { echo "[soak] a kvmt-loadgen run failed: see $out/*.log" >&2; exit 1; }

metrics="$(/usr/bin/python3 -c "import urllib.request as u;
print(u.urlopen('http://127.0.0.1:$metrics_port/metrics', timeout=10).read().decode())")"
kill -TERM "$server"
status=0
wait "$server" || status=$?
trap - EXIT

/usr/bin/python3 - "$out" "$warmup" "$seconds" "$status" "$metrics" <<'EOF' | tee "$out/summary.txt"
import json, sys
out, warmup, seconds, server_status, metrics = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
problems = []
samples = [tuple(map(int, line.split())) for line in open(f"{out}/rss.csv") if len(line.split()) == 2]
baseline = [kib for t, kib in samples if t <= warmup][-1]
final = max(kib for t, kib in samples if t >= seconds * 0.9)
growth = 100.0 * (final - baseline) / baseline
print(f"RSS: {baseline / 1024:.1f} MiB after the warm-up, {final / 1024:.1f} MiB at the end "
      f"({growth:+.2f}%), peak {max(kib for _, kib in samples) / 1024:.1f} MiB")
if growth >= 5.0:
    problems.append(f"RSS grew {growth:.2f}% after the warm-up (limit 5%)")

def metric(name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))
pool = {name: metric(name) for name in ("kvmt_cache_used_bytes", "kvmt_cache_reserved_bytes",
                                        "kvmt_queued_segments", "kvmt_running_segments")}
print("after the load: " + ", ".join(f"{name} {value:g}" for name, value in pool.items()) +
      f"; peak pool use {metric('kvmt_cache_peak_used_bytes') / 2**20:.1f} MiB")
problems += [f"{name} is {value:g} once the load stopped" for name, value in pool.items() if value]

allowed = {"unary": set(), "stream": set(), "deadlines": {"DEADLINE_EXCEEDED", "CANCELLED"},
           "cancels": {"CANCELLED"}}
for name, codes in allowed.items():
    report = json.load(open(f"{out}/{name}.json"))
    errors = report["errors"]
    print(f"{name}: {report['requests']} calls, {report['ok_requests']} OK, {report['segments']} "
          f"segments checked, errors {errors or 'none'}")
    for code, count in errors.items():
        if code not in codes:
            problems.append(f"{name}: {count} x {code}: {report['first_error_message'][code]}")
    if report["ok_requests"] == 0:
        problems.append(f"{name}: no call completed")
print(f"kvmt-server exit status after SIGTERM: {server_status}")
if server_status != 0:
    problems.append(f"kvmt-server exited {server_status}")
print("PASSED" if not problems else "FAILED:\n  " + "\n  ".join(problems))
sys.exit(1 if problems else 0)
EOF
