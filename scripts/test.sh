#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), configures build/ with the tests, builds everything and
# runs every test through ctest. Exit code: ctest's, or that of the set-up or build step that
# failed. Arguments are passed to cmake's configure step (e.g. -DCMAKE_BUILD_TYPE=RelWithDebInfo).
# Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
cmake_args=("$@")

bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKVMT_BUILD_TESTS=ON "${cmake_args[@]}"
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure --no-tests=error -j2
