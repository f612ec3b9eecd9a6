# Sourced by scripts/test.sh and scripts/fuzz.sh (with $root set): how the sanitizer build
# directories are configured. Both use clang at -O2 (at -O1 the kernels are not vectorised and
# the sanitizer run takes much longer) with line tables for readable reports, and reuse build/'s
# Python-generated reference data, which does not depend on the build.
#  build-asan/: AddressSanitizer + UndefinedBehaviorSanitizer (leaks are errors), every test,
#               the CLI and the libFuzzer targets; shared by test.sh --sanitize and fuzz.sh.
#  build-tsan/: ThreadSanitizer; only the tests labelled `concurrency` are built and run.
asan_build="$root/build-asan"
tsan_build="$root/build-tsan"

configure_sanitizer_build() {  # DIR SANITIZERS FUZZERS(ON|OFF) [cmake args...]
  local dir="$1" sanitizers="$2" fuzzers="$3"
  shift 3
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" -DKVMT_BUILD_TESTS=ON \
    -DKVMT_REFERENCE_DATA_DIR="$root/build/reference_data" \
    -DKVMT_SANITIZE="$sanitizers" -DKVMT_BUILD_FUZZERS="$fuzzers" "$@" >/dev/null
}

configure_asan_build() { configure_sanitizer_build "$asan_build" address,undefined ON "$@"; }
configure_tsan_build() { configure_sanitizer_build "$tsan_build" thread OFF "$@"; }
