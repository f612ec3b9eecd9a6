#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), builds and runs the tests. Exit code: ctest's, or that
# of the set-up or build step that failed. Works from any directory.
#   scripts/test.sh [cmake args]             build/ (Release): everything, every test (ctest -j2)
#   scripts/test.sh --sanitize [cmake args]  build-asan/ (clang, ASan+UBSan, leaks are errors):
#                                            the CLI and every test, then the whole suite but the
#                                            PyTorch reference's self-test (label oracle), which
#                                            runs no kvmt code
#   scripts/test.sh --tsan [cmake args]      build-tsan/ (clang, ThreadSanitizer): the tests
#                                            labelled concurrency
# Extra arguments are passed to cmake's configure step (e.g. -DCMAKE_BUILD_TYPE=RelWithDebInfo).
# Sanitizer reports fail the test that made them; runtime options and suppressions:
# tests/sanitizers/. See docs/RELIABILITY.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/sanitizer_builds.sh"
mode=plain
case "${1:-}" in
  --sanitize) mode=asan; shift ;;
  --tsan) mode=tsan; shift ;;
esac
cmake_args=("$@")

bash "$root/scripts/setup.sh"
case "$mode" in
  plain)
    build="$root/build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKVMT_BUILD_TESTS=ON "${cmake_args[@]}"
    cmake --build "$build" -j"$(nproc)"
    ctest --test-dir "$build" --output-on-failure --no-tests=error -j2
    ;;
  asan)
    configure_asan_build "${cmake_args[@]}"
    cmake --build "$asan_build" -j"$(nproc)" --target kvmt-translate kvmt_all_tests
    ctest --test-dir "$asan_build" --output-on-failure --no-tests=error -j2 -LE oracle
    ;;
  tsan)
    configure_tsan_build "${cmake_args[@]}"
    cmake --build "$tsan_build" -j"$(nproc)" --target kvmt_concurrency_tests
    ctest --test-dir "$tsan_build" --output-on-failure --no-tests=error -j2 -L concurrency
    ;;
esac
