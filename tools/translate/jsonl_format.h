// JsonlFormat: a line is a kvmt.v1.TranslateRequest in protobuf's JSON mapping, its output line
// the TranslateResponse. The request's options override the defaults field by field (proto3
// merge: what it leaves unset or zero keeps the default); its `model`, when given, must name the
// loaded model.
#pragma once

#include <string>
#include <vector>

#include "tools/translate/line_format.h"

namespace kvmt {

class JsonlFormat : public LineFormat {
 public:
  // `model_names`: what a request's `model` field may say (empty: any name).
  JsonlFormat(const v1::DecodingOptions& defaults, std::vector<std::string> model_names);

  absl::StatusOr<ParsedLine> Parse(absl::string_view line) const override;
  absl::StatusOr<std::string> Format(const ParsedLine& line,
                                     const v1::TranslateResponse& response) const override;

 private:
  const v1::DecodingOptions defaults_;
  const std::vector<std::string> model_names_;
};

}  // namespace kvmt
