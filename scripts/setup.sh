#!/usr/bin/env bash
# Installs everything kvmt needs on Debian 12 and builds SentencePiece 0.1.97 from Debian's source
# package as a static library against the system protobuf (the binary package bundles its own
# protobuf and crashes beside gRPC; see docs/DEPENDENCIES.md). Idempotent: reruns are quick.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="${KVMT_DEPS_DIR:-$root/.deps}"
# apt-get needs root: run as root, or through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "[setup] error: '$*' needs root: run as root or install sudo" >&2
    exit 1
  fi
}

# With --no-install-recommends: anything only recommended must be listed (ocl-icd-opencl-dev is a
# Recommends of libdnnl-dev, but find_package(dnnl) fails without OpenCL). clang with its sanitizer
# and libFuzzer runtimes and LLVM's OpenMP (with the Archer tool for ThreadSanitizer) build the
# sanitizer and fuzzing builds (scripts/test.sh --sanitize / --tsan, scripts/fuzz.sh).
packages=(
  build-essential cmake pkg-config dpkg-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev openssl
  python3 python3-torch python3-numpy python3-grpcio python3-protobuf python3-sentencepiece
  libopenblas0-pthread
  clang libclang-rt-14-dev libomp-dev
  nginx python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[setup] installing ${#missing[@]} Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # Through env: sudo's env_reset would drop a plain variable assignment.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "[setup] Debian packages: all present"
fi

spm_prefix="$deps/sentencepiece"
if [ -f "$spm_prefix/lib/libsentencepiece.a" ] && [ -f "$spm_prefix/include/sentencepiece_processor.h" ]; then
  echo "[setup] SentencePiece: already built in $spm_prefix"
  exit 0
fi

echo "[setup] SentencePiece: building 0.1.97 from Debian's source package"
if ! grep -rqs "^Types:.*deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
  # Same suites as the binary sources, with source packages.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    grep -q "debian" "$f" || continue
    sed 's/^Types: deb$/Types: deb-src/' "$f" | as_root tee "${f%.sources}-src.sources" >/dev/null
  done
  if [ -f /etc/apt/sources.list ] && grep -q "^deb .*debian" /etc/apt/sources.list; then
    grep "^deb .*debian" /etc/apt/sources.list | sed 's/^deb /deb-src /' |
      as_root tee /etc/apt/sources.list.d/kvmt-deb-src.list >/dev/null
  fi
  as_root apt-get update -qq
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq sentencepiece >"$work/source.log" 2>&1) \
  || { cat "$work/source.log" >&2; echo "[setup] error: apt-get source sentencepiece failed" >&2; exit 1; }
src="$(find "$work" -maxdepth 1 -type d -name 'sentencepiece-*' | head -n 1)"
if [ -z "$src" ]; then
  echo "[setup] error: apt-get source sentencepiece produced no source tree" >&2
  exit 1
fi
# Debian's source disables the static library with one patch: take that patch back out.
patch -R -p1 -s -d "$src" < "$src/debian/patches/disable-static-library.patch"
# init.h includes the bundled protobuf-lite header by path; build against the system protobuf.
sed -i 's|"third_party/protobuf-lite/google/protobuf/message_lite.h"|<google/protobuf/message_lite.h>|' \
  "$src/src/init.h"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DSPM_USE_BUILTIN_PROTOBUF=OFF -DSPM_ENABLE_SHARED=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_INSTALL_PREFIX="$spm_prefix" >/dev/null
cmake --build "$work/build" --target sentencepiece-static -j"$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -n 50 "$work/build.log" >&2; exit 1; }
mkdir -p "$spm_prefix/lib" "$spm_prefix/include"
cp "$work/build/src/libsentencepiece.a" "$spm_prefix/lib/"
cp "$src/src/sentencepiece_processor.h" "$spm_prefix/include/"
echo "[setup] SentencePiece: installed in $spm_prefix"
