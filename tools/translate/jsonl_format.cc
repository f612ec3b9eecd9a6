#include "tools/translate/jsonl_format.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace kvmt {

JsonlFormat::JsonlFormat(const v1::DecodingOptions& defaults, std::vector<std::string> model_names)
    : defaults_(defaults), model_names_(std::move(model_names)) {}

absl::StatusOr<ParsedLine> JsonlFormat::Parse(absl::string_view line) const {
  ParsedLine parsed;
  v1::TranslateRequest& request = parsed.request;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(line.data(), line.size()), &request);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a kvmt.v1.TranslateRequest in JSON: ", status.message().ToString()));
  }
  if (request.segments().empty()) {
    return absl::InvalidArgumentError("the request has no segments");
  }
  if (!request.model().empty() && !model_names_.empty() &&
      std::find(model_names_.begin(), model_names_.end(), request.model()) == model_names_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("the request's model '", request.model(),
                                                   "' is not the loaded one ('",
                                                   model_names_.front(), "')"));
  }
  v1::DecodingOptions merged = defaults_;
  merged.MergeFrom(request.options());
  *request.mutable_options() = std::move(merged);
  return parsed;
}

absl::StatusOr<std::string> JsonlFormat::Format(const ParsedLine& line,
                                                const v1::TranslateResponse& response) const {
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(response, &json);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print a response as JSON: ", status.message().ToString()));
  }
  return json;
}

}  // namespace kvmt
