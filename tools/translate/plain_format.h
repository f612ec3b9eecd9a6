// PlainFormat: a line is one segment, as text (tokenised by the model) or, with `tokenized`, as
// tokens separated by spaces or tabs; the output line is its hypotheses (FormatSegmentResult).
#pragma once

#include <string>

#include "tools/translate/line_format.h"

namespace kvmt {

class PlainFormat : public LineFormat {
 public:
  PlainFormat(const v1::DecodingOptions& options, bool tokenized);

  absl::StatusOr<ParsedLine> Parse(absl::string_view line) const override;
  absl::StatusOr<std::string> Format(const ParsedLine& line,
                                     const v1::TranslateResponse& response) const override;

 private:
  const v1::DecodingOptions options_;
  const bool tokenized_;
};

// The segment of a line: its text, or its tokens split on spaces and tabs.
v1::Segment LineSegment(absl::string_view text, bool tokenized);

}  // namespace kvmt
