// Encoder: source ids -> EncodedSource (encoder output plus every decoder layer's source K/V),
// run once per batch of segments, padded and masked. Thread-safe: holds only const weights.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/block_pool.h"
#include "cache/encoded_source.h"
#include "cache/kv_block_layout.h"
#include "core/compute_type.h"
#include "core/linear.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

// The shape of the K/V blocks of a model: its decoder layers and d_model, 16 positions a block.
KVBlockLayout KVLayoutFor(const ModelConfig& config);

class Encoder {
 public:
  // The linear layers are built for `compute_type` here (weights quantised or rounded once);
  // config and weights must outlive the encoder.
  static absl::StatusOr<std::unique_ptr<Encoder>> Create(
      const ModelConfig& config, const TransformerWeights& weights,
      ComputeType compute_type = ComputeType::kFloat32);

  // Every id must be a valid source id; an empty segment is an error. The source K/V go into
  // blocks of `pool` (ResourceExhausted when it is full); without a pool, a pool just big
  // enough for this batch is made.
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Encode(
      const std::vector<std::vector<int32_t>>& source_ids,
      std::shared_ptr<BlockPool> pool = nullptr) const;

 private:
  struct Layer {
    std::unique_ptr<Linear> qkv;
    std::unique_ptr<Linear> output;
    std::unique_ptr<Linear> ffn_inner;
    std::unique_ptr<Linear> ffn_outer;
  };

  Encoder(const ModelConfig& config, const TransformerWeights& weights);

  const ModelConfig& config_;
  const TransformerWeights& weights_;
  std::vector<Layer> layers_;
  // Each decoder layer's source K/V projection: run here, once per source.
  std::vector<std::unique_ptr<Linear>> cross_attention_kv_;
};

}  // namespace kvmt
