// Search: a whole batch of segments decoded to the end with one set of options (the CLI and
// library path), as a loop over BatchSearch. Knows token ids only, never a file format.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "decoder/search/batch_search.h"

namespace kvmt {

// Segment i decodes sources[i] with the forced start prefixes[i] (may be empty). Returns one
// SearchResult per segment, in order.
absl::StatusOr<std::vector<SearchResult>> Search(
    StepModel& model, const std::vector<std::shared_ptr<const EncodedSource>>& sources,
    const std::vector<std::vector<int32_t>>& prefixes, const SearchOptions& options,
    const SearchVocabulary& vocabulary);

}  // namespace kvmt
