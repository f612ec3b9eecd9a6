// DecoderState: the live hypotheses of one decoding run — their self-attention cache, the
// EncodedSource each one attends to (shared by a segment's beams, never copied) and the
// step's scratch buffers, which grow to the largest batch once and are then reused.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "cache/self_attention_cache.h"
#include "cache/encoded_source.h"

namespace kvmt {

class DecoderState {
 public:
  explicit DecoderState(std::unique_ptr<SelfAttentionCache> cache);

  // Adds a hypothesis that decodes `source` from position 0; returns its index.
  int AddHypothesis(std::shared_ptr<const EncodedSource> source);
  // New hypothesis i continues old hypothesis parents[i]; the others are dropped.
  absl::Status Reorder(absl::Span<const int32_t> parents);

  int num_hypotheses() const { return static_cast<int>(sources_.size()); }
  int length(int i) const { return cache_->length(i); }
  const EncodedSource& source(int i) const { return *sources_[i]; }
  SelfAttentionCache& cache() { return *cache_; }

  // Scratch buffer `slot` with room for at least `floats` values (contents unspecified).
  float* Scratch(int slot, int64_t floats);
  // Per-step bookkeeping buffers, kept so that steps do not allocate.
  std::vector<int32_t>& positions() { return positions_; }
  std::vector<const EncodedSource*>& source_pointers() { return source_pointers_; }

 private:
  std::unique_ptr<SelfAttentionCache> cache_;
  std::vector<std::shared_ptr<const EncodedSource>> sources_;
  std::vector<std::shared_ptr<const EncodedSource>> reordered_sources_;
  std::vector<std::vector<float>> scratch_;
  std::vector<int32_t> positions_;
  std::vector<const EncodedSource*> source_pointers_;
};

}  // namespace kvmt
