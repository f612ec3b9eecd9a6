# Sanitizer and fuzzing builds (scripts/test.sh --sanitize / --tsan, scripts/fuzz.sh), each in a
# build directory of its own. KVMT_SANITIZE instruments every kvmt target; the runtime options and
# suppression files (tests/sanitizers/) are compiled into every executable, so a test, a tool run
# as a subprocess and a fuzzer all run the same way however they are started.
set(KVMT_SANITIZE "" CACHE STRING
    "Sanitizers for every kvmt target: address,undefined or thread (empty: none)")
option(KVMT_BUILD_FUZZERS "Build the libFuzzer targets of tests/fuzz (clang only)" OFF)

if(KVMT_SANITIZE)
  # -Wno-pass-failed: the instrumented `omp simd` loops of the kernels cannot be vectorised,
  # and clang says so for each of them.
  add_compile_options(-fsanitize=${KVMT_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -Wno-pass-failed)
  add_link_options(-fsanitize=${KVMT_SANITIZE})
  add_library(kvmt_sanitizer_options OBJECT ${CMAKE_SOURCE_DIR}/tests/sanitizers/options.cc)
  target_compile_definitions(kvmt_sanitizer_options PRIVATE
    KVMT_SANITIZER_DIR="${CMAKE_SOURCE_DIR}/tests/sanitizers")
  link_libraries(kvmt_sanitizer_options)
endif()

if(KVMT_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KVMT_BUILD_FUZZERS needs clang (libFuzzer): configure with "
                        "-DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage feedback for libFuzzer in every library but the numeric kernels (see the list);
  # only the fuzzers link libFuzzer itself.
  add_compile_options(-fsanitize=fuzzer-no-link
    -fsanitize-coverage-ignorelist=${CMAKE_SOURCE_DIR}/tests/fuzz/coverage_ignorelist.txt)
endif()
