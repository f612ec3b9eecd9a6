#include "tools/translate/tsv_format.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tools/segment_format.h"
#include "tools/translate/plain_format.h"

namespace kvmt {

TsvFormat::TsvFormat(const v1::DecodingOptions& options, bool tokenized, int column)
    : options_(options), tokenized_(tokenized), column_(column) {}

absl::StatusOr<ParsedLine> TsvFormat::Parse(absl::string_view line) const {
  const std::vector<absl::string_view> columns = absl::StrSplit(line, '\t');
  if (static_cast<int>(columns.size()) < column_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the line has ", columns.size(), " tab-separated columns; --column is ", column_));
  }
  ParsedLine parsed;
  parsed.kept = std::string(line);
  *parsed.request.mutable_options() = options_;
  const absl::string_view text = columns[static_cast<size_t>(column_ - 1)];
  const v1::Segment segment = LineSegment(text, tokenized_);
  if (!segment.text().empty() || !segment.tokens().empty())
    *parsed.request.add_segments() = segment;
  return parsed;
}

absl::StatusOr<std::string> TsvFormat::Format(const ParsedLine& line,
                                              const v1::TranslateResponse& response) const {
  if (response.results_size() != line.request.segments_size()) {
    return absl::InternalError(absl::StrCat("expected ", line.request.segments_size(),
                                            " results for a line, got ", response.results_size()));
  }
  if (response.results().empty()) return line.kept;
  std::vector<absl::string_view> columns = absl::StrSplit(line.kept, '\t');
  // A tab inside the translation would shift the columns after it.
  const std::string translation = absl::StrReplaceAll(
      FormatSegmentResult(response.results(0), tokenized_, options_.return_scores()),
      {{"\t", " "}});
  columns[static_cast<size_t>(column_ - 1)] = translation;
  return absl::StrJoin(columns, "\t");
}

}  // namespace kvmt
