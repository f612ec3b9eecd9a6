#include "tools/translate/plain_format.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/segment_format.h"

namespace kvmt {

v1::Segment LineSegment(absl::string_view text, bool tokenized) {
  v1::Segment segment;
  if (tokenized) {
    for (absl::string_view token :
         absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      segment.add_tokens(std::string(token));
    }
  } else {
    segment.set_text(std::string(text));
  }
  return segment;
}

PlainFormat::PlainFormat(const v1::DecodingOptions& options, bool tokenized)
    : options_(options), tokenized_(tokenized) {}

absl::StatusOr<ParsedLine> PlainFormat::Parse(absl::string_view line) const {
  ParsedLine parsed;
  *parsed.request.add_segments() = LineSegment(line, tokenized_);
  *parsed.request.mutable_options() = options_;
  return parsed;
}

absl::StatusOr<std::string> PlainFormat::Format(const ParsedLine& line,
                                                const v1::TranslateResponse& response) const {
  if (response.results_size() != 1) {
    return absl::InternalError(
        absl::StrCat("expected 1 result for a line, got ", response.results_size()));
  }
  return FormatSegmentResult(response.results(0), tokenized_, options_.return_scores());
}

}  // namespace kvmt
