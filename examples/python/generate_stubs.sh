#!/usr/bin/env bash
# Generates the Python modules for kvmt's proto (messages and gRPC stubs: package kvmt.v1) and
# for the standard health service (package kvmt_health: under its own name, since a "grpc"
# package of ours would hide python3-grpcio's) into OUT_DIR, with Debian's protoc and
# grpc_python_plugin (protobuf-compiler, protobuf-compiler-grpc). Usage: generate_stubs.sh OUT_DIR
set -euo pipefail

out="${1:?usage: generate_stubs.sh OUT_DIR}"
proto="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../proto" && pwd)"
mkdir -p "$out/.proto/kvmt_health"
cp "$proto/grpc/health/v1/health.proto" "$out/.proto/kvmt_health/health.proto"
protoc --proto_path="$proto" --proto_path="$out/.proto" --python_out="$out" \
  --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  kvmt/v1/translation.proto kvmt_health/health.proto
