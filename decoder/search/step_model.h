// StepModel: what the search needs from a decoder — logits for the newest token of every live
// hypothesis, and a way to continue some hypotheses and drop others. The search knows token ids
// only; the cached and the textbook (uncached) decoders both implement this.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "decoder/decoder.h"

namespace kvmt {

class StepModel {
 public:
  virtual ~StepModel() = default;
  // tokens[i] is the newest input of hypothesis i; writes logits [num hypotheses, vocab].
  virtual absl::Status Logits(absl::Span<const int32_t> tokens, Tensor& logits) = 0;
  // New hypothesis i continues old hypothesis parents[i].
  virtual absl::Status Reorder(absl::Span<const int32_t> parents) = 0;
};

// Hypothesis i starts on sources[i], on the KV cache.
std::unique_ptr<StepModel> MakeCachedStepModel(
    const Decoder& decoder, const std::vector<std::shared_ptr<const EncodedSource>>& sources);

// Hypothesis i starts on sources[i]; every step recomputes its whole input sequence.
std::unique_ptr<StepModel> MakeUncachedStepModel(
    const Decoder& decoder, const std::vector<std::shared_ptr<const EncodedSource>>& sources);

}  // namespace kvmt
