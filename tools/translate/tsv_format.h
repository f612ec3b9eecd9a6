// TsvFormat: a line is tab-separated columns; column `column` (1-based) is translated as a plain
// line would be and replaced by its translation, the other columns are written back unchanged.
// A line with fewer columns is an error; an empty column stays empty.
#pragma once

#include <string>

#include "tools/translate/line_format.h"

namespace kvmt {

class TsvFormat : public LineFormat {
 public:
  TsvFormat(const v1::DecodingOptions& options, bool tokenized, int column);

  absl::StatusOr<ParsedLine> Parse(absl::string_view line) const override;
  absl::StatusOr<std::string> Format(const ParsedLine& line,
                                     const v1::TranslateResponse& response) const override;

 private:
  const v1::DecodingOptions options_;
  const bool tokenized_;
  const int column_;
};

}  // namespace kvmt
