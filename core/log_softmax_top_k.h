// One pass over a row of logits for the search: the log-softmax normaliser log(sum exp(x)) and
// the k largest values, reading the row from memory once (in L1-sized chunks that are summed
// with a vectorised exp and skipped for the top-k when their maximum cannot make it).
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace kvmt {

struct TopKEntry {
  float value;
  int32_t index;
};

// Returns log(sum over x of exp(x) + sum over `extra` of exp(extra)); `extra` holds logits that
// count in the normaliser but were masked out of x (set to -inf there). Writes the k largest
// finite values of x (ties: lower index first) to top[0, found), largest first. k may be 0.
float LogSumExpTopK(const float* x, int64_t n, absl::Span<const float> extra, int k, TopKEntry* top,
                    int* found);

}  // namespace kvmt
