#include "decoder/search/search.h"

#include "absl/strings/str_cat.h"

namespace kvmt {

absl::StatusOr<std::vector<SearchResult>> Search(
    StepModel& model, const std::vector<std::shared_ptr<const EncodedSource>>& sources,
    const std::vector<std::vector<int32_t>>& prefixes, const SearchOptions& options,
    const SearchVocabulary& vocabulary) {
  if (sources.size() != prefixes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("search: ", sources.size(), " sources but ",
                                                   prefixes.size(), " prefixes"));
  }
  BatchSearch search(model, vocabulary);
  for (size_t i = 0; i < sources.size(); ++i) {
    if (absl::Status status = search.Add(i, sources[i], prefixes[i], options); !status.ok()) {
      return status;
    }
  }
  std::vector<SearchResult> results(sources.size());
  SearchStepOutput output;
  while (!search.empty()) {
    if (absl::Status status = search.Step(output); !status.ok()) return status;
    for (SearchStepOutput::Done& done : output.finished) {
      results[done.segment] = std::move(done.result);
    }
  }
  return results;
}

}  // namespace kvmt
