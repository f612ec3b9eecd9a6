// The requests kvmt-loadgen cycles through, made from its --input: plain lines grouped into
// requests of K segments each, or one kvmt.v1.TranslateRequest in JSON per line.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvmt/v1/translation.pb.h"

namespace kvmt {

// Lines 0..K-1, K..2K-1, ... as segment texts, wrapping around the end, until the requests
// start again with line 0: lcm(lines, K) / K requests. Empty lines are skipped.
std::vector<v1::TranslateRequest> RequestsFromLines(const std::vector<std::string>& lines,
                                                    int segments_per_request);

// One request per non-empty line, in protobuf's JSON mapping; an error names the line.
absl::StatusOr<std::vector<v1::TranslateRequest>> RequestsFromJsonLines(
    const std::vector<std::string>& lines);

}  // namespace kvmt
