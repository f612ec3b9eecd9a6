#!/usr/bin/env bash
# Peak memory of kvmt-translate against the size of its input: the same four short lines
# repeated to 100,000 and to 1,000,000 lines, greedy search, on the transliteration model.
# Prints one summary line per size; the peak RSS should not grow with the number of lines.
# Usage: bench/translate_file_memory.sh [BUILD_DIR] [THREADS]   (defaults: build, 1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
threads="${2:-1}"
model="$root/../shared/models/ct2-v2-aren-transliteration"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for ((i = 0; i < 1000; ++i)); do printf 'آ ت ز م و ن\nآ ز ا\nم و ن\nز ا ت\n'; done >"$work/block.txt"
for lines in 100000 1000000; do
  for ((i = 0; i < lines / 4000; ++i)); do cat "$work/block.txt"; done >"$work/input.txt"
  "$build/bin/kvmt-translate" --model "$model" --input "$work/input.txt" \
    --output "$work/output.txt" --beam-size 1 --threads "$threads" 2>&1 | tail -n 1
  echo "  output lines: $(wc -l <"$work/output.txt")"
done
