// Decoder: one step of the Transformer decoder for a batch of hypotheses. Each step embeds only
// the newest token of each hypothesis, appends its K/V to the self-attention cache and attends
// over the cache; cross-attention reads the EncodedSource shared by the hypothesis's beams.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "cache/encoded_source.h"
#include "core/compute_type.h"
#include "core/linear.h"
#include "core/tensor.h"
#include "decoder/decoder_state.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

class Decoder {
 public:
  // The linear layers are built for `compute_type` here (weights quantised or rounded once);
  // config and weights must outlive the decoder.
  static absl::StatusOr<std::unique_ptr<Decoder>> Create(
      const ModelConfig& config, const TransformerWeights& weights,
      ComputeType compute_type = ComputeType::kFloat32);

  // Feeds tokens[i] to hypothesis i of `state` at position state.length(i), appends its K/V to
  // the cache (length grows by one) and returns logits [N, target_vocab], row-major, in the
  // state's scratch memory (valid until the next step). Allocates nothing once warmed up.
  absl::StatusOr<absl::Span<float>> Step(absl::Span<const int32_t> tokens,
                                         DecoderState& state) const;

  // The textbook decoder without a KV cache: runs every hypothesis's whole input sequence
  // (start token first) and writes the logits of its last position, [N, target_vocab].
  absl::Status StepWithoutCache(const std::vector<std::vector<int32_t>>& inputs,
                                const std::vector<const EncodedSource*>& sources,
                                Tensor& logits) const;

  // Teacher forcing for tests: logits [target_ids.size(), target_vocab]; row t follows the
  // inputs start, target_ids[0], ..., target_ids[t-1]. Runs on the cache, step by step.
  absl::StatusOr<Tensor> ForcedLogits(std::shared_ptr<const EncodedSource> source,
                                      absl::Span<const int32_t> target_ids) const;

  const ModelConfig& config() const { return config_; }

 private:
  struct Layer {
    std::unique_ptr<Linear> self_attention_qkv;
    std::unique_ptr<Linear> self_attention_output;
    std::unique_ptr<Linear> cross_attention_query;
    std::unique_ptr<Linear> cross_attention_output;
    std::unique_ptr<Linear> ffn_inner;
    std::unique_ptr<Linear> ffn_outer;
  };

  Decoder(const ModelConfig& config, const TransformerWeights& weights);

  const ModelConfig& config_;
  const TransformerWeights& weights_;
  std::vector<Layer> layers_;
  std::unique_ptr<Linear> output_projection_;
};

}  // namespace kvmt
