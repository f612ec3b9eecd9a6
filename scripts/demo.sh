#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), builds kvmt-translate in build/ and transliterates a few
# Arabic words with the real CTranslate2 model from ../shared. Extra arguments go to
# kvmt-translate (e.g. --beam-size 1, --no-cache). Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
model="$(cd "$root/.." && pwd)/shared/models/ct2-v2-aren-transliteration"
input="$root/scripts/samples/ar-transliteration.txt"

if [ ! -f "$model/model.bin" ]; then
  echo "[demo] error: no model at $model (the shared/ folder must sit beside the repository)" >&2
  exit 1
fi

bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target kvmt-translate

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The model reads one token per character, space-separated: hence --tokenized. The run summary
# (segments, tokens, wall time, target tokens/s, peak RSS) comes on stderr: shown after the text.
if ! "$build/bin/kvmt-translate" --model "$model" --input "$input" --output "$work/output" \
    --tokenized "$@" 2>"$work/summary"; then
  cat "$work/summary" >&2
  exit 1
fi

echo "[demo] $model"
echo "[demo] input  ->  output"
paste -d '\t' "$input" "$work/output" | sed 's/\t/  ->  /'
echo "[demo] summary"
cat "$work/summary"
