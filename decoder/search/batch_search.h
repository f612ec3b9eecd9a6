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
#include "absl/types/span.h"
#include "cache/encoded_source.h"
#include "core/log_softmax_top_k.h"
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

  bool empty() const { return alive_count_ == 0; }
  int num_segments() const { return static_cast<int>(segments_.size()); }
  int num_hypotheses() const { return static_cast<int>(alive_count_); }

 private:
  struct Segment;
  struct Hypothesis {
    Segment* segment = nullptr;
    std::vector<int32_t> tokens;  // Capacity kept when the slot is reused: steps do not allocate.
    float cumulative = 0.0f;
  };
  struct Candidate {
    float score;
    int64_t flat;  // Row within the segment's hypotheses * vocab + token.
  };

  // The next free slot of next_, its token storage ready for `segment`.
  Hypothesis& NextSlot(Segment* segment);
  void ScoreRows(absl::Span<float> logits);
  void StepSegment(size_t begin, size_t end, absl::Span<float> logits);
  void ApplyRepetitionPenalty(const std::vector<int32_t>& tokens, float penalty, float* logits);

  StepModel& model_;
  const SearchVocabulary vocabulary_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Segment>> segments_;
  // alive_[0, alive_count_) in step-model order, a segment's hypotheses adjacent; slots past the
  // count keep their storage for reuse. next_ is built during a step, then swapped in.
  std::vector<Hypothesis> alive_;
  size_t alive_count_ = 0;
  std::vector<Hypothesis> next_;
  size_t next_count_ = 0;
  std::vector<int32_t> parents_;
  std::vector<int32_t> inputs_;
  std::vector<Segment*> stepped_;
  std::vector<Candidate> candidates_;
  // Per alive row, from ScoreRows: log-softmax normaliser and the 2K best logits.
  std::vector<float> row_normaliser_;
  std::vector<TopKEntry> row_top_;
  std::vector<int> row_found_;
  size_t row_top_stride_ = 0;
  std::vector<uint8_t> seen_;
  std::vector<float> sample_log_probs_;
  std::vector<std::pair<float, int32_t>> sample_allowed_;
  SearchStepOutput* output_ = nullptr;
};

}  // namespace kvmt
