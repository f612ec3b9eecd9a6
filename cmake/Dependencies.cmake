# Third-party dependencies: Debian 12 packages, plus SentencePiece built from Debian's source
# package by scripts/setup.sh (the binary package carries its own protobuf and crashes beside
# libprotobuf; see docs/DEPENDENCIES.md).
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(dnnl CONFIG REQUIRED)
find_package(nlohmann_json REQUIRED)

set(KVMT_SENTENCEPIECE_ROOT "${CMAKE_SOURCE_DIR}/.deps/sentencepiece"
    CACHE PATH "Install prefix of SentencePiece built by scripts/setup.sh")
find_library(KVMT_SENTENCEPIECE_LIBRARY NAMES libsentencepiece.a
             PATHS "${KVMT_SENTENCEPIECE_ROOT}/lib" "${KVMT_SENTENCEPIECE_ROOT}/lib64"
             NO_DEFAULT_PATH)
find_path(KVMT_SENTENCEPIECE_INCLUDE_DIR NAMES sentencepiece_processor.h
          PATHS "${KVMT_SENTENCEPIECE_ROOT}/include" NO_DEFAULT_PATH)
if(NOT KVMT_SENTENCEPIECE_LIBRARY OR NOT KVMT_SENTENCEPIECE_INCLUDE_DIR)
  message(FATAL_ERROR "SentencePiece (static, built against the system protobuf) not found "
                      "under ${KVMT_SENTENCEPIECE_ROOT}: run scripts/setup.sh first")
endif()
add_library(kvmt_sentencepiece STATIC IMPORTED GLOBAL)
set_target_properties(kvmt_sentencepiece PROPERTIES
  IMPORTED_LOCATION "${KVMT_SENTENCEPIECE_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${KVMT_SENTENCEPIECE_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "protobuf::libprotobuf;Threads::Threads")

if(KVMT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# cpp-httplib: Debian builds it as a shared library whose ABI depends on the feature macros in
# its pkg-config Cflags, so it is used through pkg-config rather than as a bare header.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
