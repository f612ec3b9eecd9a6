// Decoding a TranslateRequest from the wire in the service itself: protobuf refuses a proto3
// string that is not UTF-8, and gRPC would answer with a generic error; here such a request is
// INVALID_ARGUMENT naming the segment and the field, like the Translator's own check.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvmt/v1/translation.pb.h"

namespace kvmt {

absl::StatusOr<v1::TranslateRequest> DecodeTranslateRequest(const grpc::ByteBuffer& buffer);

// Why `bytes` do not parse as a TranslateRequest: the first string that is not UTF-8, or
// malformed wire data.
absl::Status DescribeUnparsableRequest(absl::string_view bytes);

}  // namespace kvmt
