// SearchOptions: how to pick target tokens, resolved from DecodingOptions (no zero-means-default
// left here). Knows token ids only, never a file format.
#pragma once

#include <cstdint>
#include <vector>

namespace kvmt {

struct SearchOptions {
  int beam_size = 4;               // 1: greedy (or sampling when sampling_topk != 1).
  int num_hypotheses = 1;          // <= beam_size.
  float length_penalty = 1.0f;     // Final score = cumulative log-prob / length^length_penalty.
  int max_decoding_length = 256;   // Decoding steps, prefix and </s> included.
  int min_decoding_length = 0;     // </s> is masked before this many target tokens.
  float repetition_penalty = 1.0f; // CTRL-style, on logits of tokens already in the hypothesis.
  int no_repeat_ngram_size = 0;
  int sampling_topk = 1;           // 0: the whole vocabulary; 1: argmax.
  float sampling_temperature = 1.0f;
  uint64_t seed = 0;
  bool return_end_token = false;
};

struct SearchHypothesis {
  std::vector<int32_t> ids;  // Target ids, prefix included; </s> only with return_end_token.
  float score = 0.0f;
};

struct SearchResult {
  std::vector<SearchHypothesis> hypotheses;  // Best first, num_hypotheses of them.
};

}  // namespace kvmt
