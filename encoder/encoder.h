// Encoder: source ids -> EncodedSource (encoder output plus every decoder layer's source K/V),
// run once per batch of segments, padded and masked. Thread-safe: holds only const weights.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "encoder/encoded_source.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

class Encoder {
 public:
  Encoder(const ModelConfig& config, const TransformerWeights& weights);

  // Every id must be a valid source id; an empty segment is an error.
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Encode(
      const std::vector<std::vector<int32_t>>& source_ids) const;

 private:
  const ModelConfig& config_;
  const TransformerWeights& weights_;
};

}  // namespace kvmt
