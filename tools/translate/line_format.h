// LineFormat: how one input line becomes a translation request, and how that request's results
// become its output line. Plain text, TSV and JSONL each implement it; empty lines never reach it.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvmt/v1/translation.pb.h"

namespace kvmt {

// An input line as a request. A request without segments has nothing to translate.
struct ParsedLine {
  v1::TranslateRequest request;  // Its options are the ones the line is translated with.
  std::string kept;              // What the format keeps of the line to write its output (TSV).
};

class LineFormat {
 public:
  virtual ~LineFormat() = default;

  // The request for a non-empty line; INVALID_ARGUMENT saying what is wrong with the line
  // (the caller adds where it is).
  virtual absl::StatusOr<ParsedLine> Parse(absl::string_view line) const = 0;

  // The output line, without '\n', for `line` and one result per segment of its request.
  virtual absl::StatusOr<std::string> Format(const ParsedLine& line,
                                             const v1::TranslateResponse& response) const = 0;
};

}  // namespace kvmt
