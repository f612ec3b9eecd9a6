// The search of docs/DECODING.md — greedy, beam and sampling, with target prefixes, length
// limits and penalties — over any StepModel. Knows token ids only, never a file format.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "decoder/search/search_options.h"
#include "decoder/search/step_model.h"

namespace kvmt {

// The model's special target ids, as the search needs them.
struct SearchVocabulary {
  int32_t start_id = 0;
  int32_t eos_id = 0;
  std::vector<int32_t> suppressed_ids;
  int64_t size = 0;
};

// `model` holds one hypothesis per segment, in order; prefixes[i] is segment i's forced start
// (may be empty). Returns one SearchResult per segment.
absl::StatusOr<std::vector<SearchResult>> Search(StepModel& model,
                                                 const std::vector<std::vector<int32_t>>& prefixes,
                                                 const SearchOptions& options,
                                                 const SearchVocabulary& vocabulary);

}  // namespace kvmt
