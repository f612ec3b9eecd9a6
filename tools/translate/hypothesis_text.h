// The text of one segment's hypotheses on one output line, shared by the plain and TSV formats:
// best first, separated by " ||| ", each optionally "<score>\t<text>".
#pragma once

#include <string>

#include "kvmt/v1/translation.pb.h"

namespace kvmt {

struct HypothesisTextOptions {
  bool tokenized = false;      // The tokens joined by single spaces instead of the text.
  bool return_scores = false;  // Each hypothesis as "<score>\t<text>".
};

// Line breaks inside a hypothesis (a decoded token may hold one) become spaces: one line per
// segment is the contract.
std::string HypothesisText(const v1::SegmentResult& result, const HypothesisTextOptions& options);

}  // namespace kvmt
