#!/usr/bin/env bash
# Installs kvmt from BUILD_DIR into a temporary prefix, builds examples/embed against it as a
# separate CMake project, and runs it on the transliteration model: the known answers must come
# out. Usage: embed_example_test.sh BUILD_DIR EXAMPLE_DIR MODEL_DIR
set -euo pipefail

build="$1"
example="$2"
model="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
test -f "$work/prefix/include/kvmt/kvmt.h"
test -f "$work/prefix/lib/cmake/kvmt/kvmtConfig.cmake"
cmake -S "$example" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }

printf 'آ ت ز م و ن\nآ ز ا\n' | "$work/build/kvmt-embed-example" "$model" >"$work/out.txt"
expected=$'1\ta t z m o n\n2\ta z z a'
if [[ "$(cat "$work/out.txt")" != "$expected" ]]; then
  echo "unexpected output:"
  cat "$work/out.txt"
  exit 1
fi
echo "examples/embed built against $work/prefix and gave the known answers"
