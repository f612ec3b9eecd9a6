// Deterministic random Transformer models of any shape, built in memory: for benchmarks (an
// OPUS-MT-shaped model without downloading one) and for engine tests that need no file.
#pragma once

#include <memory>

#include "core/activation.h"
#include "model/model.h"

namespace kvmt {

struct RandomModelSpec {
  int d_model = 16;
  int num_heads = 4;
  int ffn_dim = 32;
  int encoder_layers = 2;
  int decoder_layers = 2;
  int source_vocab = 40;
  int target_vocab = 30;
  bool pre_norm = true;
  Activation activation = Activation::kRelu;
  int max_positions = 128;
  unsigned seed = 1;
};

// Ids: 0 is the decoder start, 1 is </s> (source and target). No vocabularies or tokenizers:
// tests drive it with ids.
std::shared_ptr<Model> MakeRandomModel(const RandomModelSpec& spec);

}  // namespace kvmt
