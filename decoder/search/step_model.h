// StepModel: what the search needs from a decoder — logits for the newest token of every live
// hypothesis, and a way to continue some hypotheses and drop others. The search knows token ids
// only; the cached and the textbook (uncached) decoders both implement this.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "cache/block_pool.h"
#include "cache/paged_kv_cache.h"
#include "core/tensor.h"
#include "decoder/decoder.h"

namespace kvmt {

class StepModel {
 public:
  virtual ~StepModel() = default;
  // tokens[i] is the newest input of hypothesis i; returns logits [num hypotheses, vocab],
  // row-major, valid until the next call (the search edits them in place).
  virtual absl::StatusOr<absl::Span<float>> Logits(absl::Span<const int32_t> tokens) = 0;
  // New hypothesis i continues old hypothesis parents[i]; the others are dropped.
  virtual absl::Status Reorder(absl::Span<const int32_t> parents) = 0;
  // Appends a hypothesis that starts decoding `source` at the next step.
  virtual void AddHypothesis(std::shared_ptr<const EncodedSource> source) = 0;
};

// On a PagedKVCache over `pool`: each step feeds one token per hypothesis.
class CachedStepModel : public StepModel {
 public:
  CachedStepModel(const Decoder& decoder, std::shared_ptr<BlockPool> pool);

  absl::StatusOr<absl::Span<float>> Logits(absl::Span<const int32_t> tokens) override;
  absl::Status Reorder(absl::Span<const int32_t> parents) override;
  void AddHypothesis(std::shared_ptr<const EncodedSource> source) override;

  // The cache, for its reorder traffic.
  const PagedKVCache& cache() const { return *cache_; }

 private:
  const Decoder& decoder_;
  PagedKVCache* cache_;  // Owned by state_.
  DecoderState state_;
};

std::unique_ptr<StepModel> MakeCachedStepModel(const Decoder& decoder,
                                               std::shared_ptr<BlockPool> pool);

// The textbook decoder: every step recomputes each hypothesis's whole input sequence.
std::unique_ptr<StepModel> MakeUncachedStepModel(const Decoder& decoder);

}  // namespace kvmt
