// EncodedSource: what the encoder computes once per source segment — its output and, for every
// decoder layer, the cross-attention K and V. Immutable and shared by all beams of the segment.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace kvmt {

struct EncodedSource {
  int length = 0;             // Source tokens, special tokens included.
  Tensor output;              // [length, d_model]: the encoder's final hidden states.
  std::vector<Tensor> keys;   // Per decoder layer: [length, d_model], heads side by side.
  std::vector<Tensor> values; // Per decoder layer: [length, d_model].

  size_t bytes() const;
};

}  // namespace kvmt
