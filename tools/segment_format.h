// How the command-line tools write one segment's result as one output line: the hypotheses best
// first, separated by " ||| ", each its text (or its tokens joined by spaces), optionally as
// "<score>\t<text>"; line breaks inside a hypothesis become spaces so the line stays one line.
#pragma once

#include <string>

#include "kvmt/v1/translation.pb.h"

namespace kvmt {

std::string FormatSegmentResult(const v1::SegmentResult& result, bool tokenized, bool with_scores);

}  // namespace kvmt
