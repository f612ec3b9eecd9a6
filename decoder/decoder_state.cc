#include "decoder/decoder_state.h"

namespace kvmt {

DecoderState::DecoderState(std::unique_ptr<SelfAttentionCache> cache) : cache_(std::move(cache)) {}

int DecoderState::AddHypothesis(std::shared_ptr<const EncodedSource> source) {
  cache_->AddSequence();
  sources_.push_back(std::move(source));
  return num_hypotheses() - 1;
}

absl::Status DecoderState::Reorder(absl::Span<const int32_t> parents) {
  if (absl::Status status = cache_->Reorder(parents); !status.ok()) return status;
  reordered_sources_.clear();
  for (int32_t parent : parents) reordered_sources_.push_back(sources_[parent]);
  sources_.swap(reordered_sources_);
  reordered_sources_.clear();
  return absl::OkStatus();
}

float* DecoderState::Scratch(int slot, int64_t floats) {
  if (static_cast<int>(scratch_.size()) <= slot) scratch_.resize(slot + 1);
  std::vector<float>& buffer = scratch_[slot];
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(floats);
  return buffer.data();
}

}  // namespace kvmt
