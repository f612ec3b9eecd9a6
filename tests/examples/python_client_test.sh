#!/usr/bin/env bash
# Generates the Python stubs with examples/python/generate_stubs.sh, starts kvmt-server on a free
# loopback port and runs examples/python/translate_client.py against it (unary and streaming):
# the known answers must come out, and a request over a server limit must end with its status
# code. Usage: python_client_test.sh SERVER_BIN MODEL_DIR EXAMPLE_DIR PYTHON
set -euo pipefail

server_bin="$1"
model="$2"
example="$3"
python="$4"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$example/generate_stubs.sh" "$work/stubs"
"$server_bin" --model "$model" --listen 127.0.0.1:0 --threads 1 --max-segment-bytes 40 \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
  grep -q " serving$" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
port="$(grep -o "listening on 127.0.0.1:[0-9]*" "$work/server.log" | cut -d: -f2)"
[[ -n "$port" ]] || { echo "kvmt-server did not start"; cat "$work/server.log"; exit 1; }

client() {
  PYTHONPATH="$work/stubs" "$python" "$example/translate_client.py" --server "127.0.0.1:$port" "$@"
}
expected=$'a t z m o n\na z z a'
for mode in "" "--stream --beam-size 1"; do
  # shellcheck disable=SC2086
  got="$(printf 'آ ت ز م و ن\nآ ز ا\n' | client $mode)"
  if [[ "$got" != "$expected" ]]; then
    echo "translate_client.py $mode gave:"
    echo "$got"
    exit 1
  fi
done

# 21 letters: 41 bytes, over --max-segment-bytes.
if printf 'ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب ب\n' | client 2>"$work/error.txt"; then
  echo "a segment over the server's limit was accepted"
  exit 1
fi
grep -q "INVALID_ARGUMENT" "$work/error.txt" || { cat "$work/error.txt"; exit 1; }
echo "examples/python/translate_client.py gave the known answers, unary and streaming"
