// BatchSearch: the search of docs/DECODING.md as a loop of steps over a running batch. Segments
// join between steps, each with its own options, and leave as soon as they are done or
// cancelled, so a short segment never waits for a long one (continuous batching). Step() runs
// one decoder step for every live hypothesis of every segment.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "decoder/search/search_options.h"
#include "decoder/search/step_model.h"
#include "cache/encoded_source.h"

namespace kvmt {

// The model's special target ids, as the search needs them.
struct SearchVocabulary {
  int32_t start_id = 0;
  int32_t eos_id = 0;
  std::vector<int32_t> suppressed_ids;
  int64_t size = 0;
};

// What one step produced.
struct SearchStepOutput {
  struct Token {
    uint64_t segment;
    int32_t id;
  };
  struct Done {
    uint64_t segment;
    SearchResult result;
  };
  // Tokens appended to segments decoded with a single hypothesis (beam size 1), which are final
  // as soon as they are chosen; </s> is not reported.
  std::vector<Token> tokens;
  std::vector<Done> finished;
};

class BatchSearch {
 public:
  BatchSearch(StepModel& model, SearchVocabulary vocabulary);
  ~BatchSearch();

  // Joins the batch at the next step with one hypothesis on `source`; `prefix` is forced first.
  // `segment` must not be in the batch already.
  absl::Status Add(uint64_t segment, std::shared_ptr<const EncodedSource> source,
                   std::vector<int32_t> prefix, const SearchOptions& options);

  // One step for every live hypothesis; clears `output` and fills it.
  absl::Status Step(SearchStepOutput& output);

  // Drops `segment` now: its hypotheses leave the step model. NotFound if it is not running.
  absl::Status Cancel(uint64_t segment);

  bool empty() const { return alive_.empty(); }
  int num_segments() const { return static_cast<int>(segments_.size()); }
  int num_hypotheses() const { return static_cast<int>(alive_.size()); }

 private:
  struct Segment;
  struct Hypothesis {
    Segment* segment = nullptr;
    std::vector<int32_t> tokens;
    float cumulative = 0.0f;
  };

  StepModel& model_;
  const SearchVocabulary vocabulary_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Segment>> segments_;
  std::vector<Hypothesis> alive_;  // In step-model order; a segment's hypotheses are adjacent.
  Tensor logits_;
};

}  // namespace kvmt
