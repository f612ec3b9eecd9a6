#include "service/request_decoding.h"

#include <google/protobuf/unknown_field_set.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "translator/utf8.h"

namespace kvmt {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Field numbers of the string fields, from translation.proto.
constexpr int kRequestModel = 1;
constexpr int kRequestSegments = 2;

absl::string_view SegmentFieldName(int number) {
  switch (number) {
    case 1:
      return "text";
    case 2:
      return "a token";
    case 3:
      return "target_prefix";
    case 4:
      return "a target prefix token";
    default:
      return "";
  }
}

// Invalid UTF-8 in the length-delimited `field` is reported as `where`.
absl::Status CheckString(const UnknownField& field, absl::string_view where) {
  const std::string& value = field.length_delimited();
  size_t offset = 0;
  if (IsValidUtf8(std::string_view(value.data(), value.size()), &offset)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(where, " is not valid UTF-8 (byte ", offset, ")"));
}

}  // namespace

absl::StatusOr<v1::TranslateRequest> DecodeTranslateRequest(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InternalError("cannot read the request bytes");
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::TranslateRequest request;
  if (request.ParseFromString(bytes)) return request;
  return DescribeUnparsableRequest(bytes);
}

absl::Status DescribeUnparsableRequest(absl::string_view bytes) {
  const absl::Status malformed =
      absl::InvalidArgumentError("the request is not a valid kvmt.v1.TranslateRequest");
  UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return malformed;
  int segment = 0;
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    if (field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    if (field.number() == kRequestModel) {
      if (absl::Status status = CheckString(field, "the model name"); !status.ok()) return status;
    }
    if (field.number() != kRequestSegments) continue;
    UnknownFieldSet segment_fields;
    if (segment_fields.ParseFromString(field.length_delimited())) {
      for (int j = 0; j < segment_fields.field_count(); ++j) {
        const UnknownField& segment_field = segment_fields.field(j);
        const absl::string_view name = SegmentFieldName(segment_field.number());
        if (name.empty() || segment_field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
        if (absl::Status status =
                CheckString(segment_field, absl::StrCat("segment ", segment, ": ", name));
            !status.ok()) {
          return status;
        }
      }
    }
    ++segment;
  }
  return malformed;
}

}  // namespace kvmt
