// Encoder: source ids -> EncodedSource (encoder output plus every decoder layer's source K/V),
// run once per batch of segments, padded and masked. Thread-safe: holds only const weights.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/block_pool.h"
#include "cache/kv_block_layout.h"
#include "cache/encoded_source.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

// The shape of the K/V blocks of a model: its decoder layers and d_model, 16 positions a block.
KVBlockLayout KVLayoutFor(const ModelConfig& config);

class Encoder {
 public:
  Encoder(const ModelConfig& config, const TransformerWeights& weights);

  // Every id must be a valid source id; an empty segment is an error. The source K/V go into
  // blocks of `pool` (ResourceExhausted when it is full); without a pool, a pool just big
  // enough for this batch is made.
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Encode(
      const std::vector<std::vector<int32_t>>& source_ids,
      std::shared_ptr<BlockPool> pool = nullptr) const;

 private:
  const ModelConfig& config_;
  const TransformerWeights& weights_;
};

}  // namespace kvmt
