// ModelConfig: the architecture and the special tokens of a loaded model — everything the
// engine needs besides the weights, whatever the file format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/activation.h"

namespace kvmt {

struct ModelConfig {
  std::string format;  // "ctranslate2" or "marian", for logs.
  int d_model = 0;
  int num_heads = 0;  // d_model % num_heads == 0.
  int ffn_dim = 0;
  int encoder_layers = 0;
  int decoder_layers = 0;
  bool pre_norm = true;  // false: post-norm.
  Activation activation = Activation::kRelu;
  float layer_norm_epsilon = 1e-6f;
  float embedding_scale = 1.0f;  // Embeddings are multiplied by this (sqrt(d_model) or 1).

  // Source ids: tokens, then (if add_source_eos) </s>; bos first if add_source_bos.
  bool add_source_bos = false;
  bool add_source_eos = false;
  int32_t source_bos_id = -1;
  int32_t source_eos_id = -1;
  int32_t source_unk_id = -1;  // -1: the vocabulary has no unknown token.

  int32_t decoder_start_id = 0;  // First decoder input (<s> for CTranslate2, <pad> for Marian).
  int32_t target_eos_id = 0;
  int32_t target_unk_id = -1;
  // Target ids the search never produces (Marian's <pad>, say).
  std::vector<int32_t> suppressed_target_ids;

  int default_beam_size = 0;  // 0: the model does not say.
  int max_positions = 0;      // Rows of the position tables.
};

}  // namespace kvmt
