#include "decoder/search/step_model.h"

#include "cache/paged_kv_cache.h"
#include "encoder/encoder.h"

namespace kvmt {
namespace {

std::unique_ptr<PagedKVCache> NewCache(const Decoder& decoder, std::shared_ptr<BlockPool> pool,
                                       PagedKVCache** raw) {
  auto cache = std::make_unique<PagedKVCache>(std::move(pool), KVLayoutFor(decoder.config()));
  *raw = cache.get();
  return cache;
}

}  // namespace

CachedStepModel::CachedStepModel(const Decoder& decoder, std::shared_ptr<BlockPool> pool)
    : decoder_(decoder), cache_(nullptr), state_(NewCache(decoder, std::move(pool), &cache_)) {}

absl::StatusOr<absl::Span<float>> CachedStepModel::Logits(absl::Span<const int32_t> tokens) {
  return decoder_.Step(tokens, state_);
}

absl::Status CachedStepModel::Reorder(absl::Span<const int32_t> parents) {
  return state_.Reorder(parents);
}

void CachedStepModel::AddHypothesis(std::shared_ptr<const EncodedSource> source) {
  state_.AddHypothesis(std::move(source));
}

namespace {

class UncachedStepModel : public StepModel {
 public:
  explicit UncachedStepModel(const Decoder& decoder) : decoder_(decoder) {}

  absl::StatusOr<absl::Span<float>> Logits(absl::Span<const int32_t> tokens) override {
    if (tokens.size() != inputs_.size()) {
      return absl::InvalidArgumentError("uncached decoder: token count differs from hypotheses");
    }
    std::vector<const EncodedSource*> sources(sources_.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      inputs_[i].push_back(tokens[i]);
      sources[i] = sources_[i].get();
    }
    if (absl::Status status = decoder_.StepWithoutCache(inputs_, sources, logits_); !status.ok()) {
      return status;
    }
    return absl::Span<float>(logits_.data(), static_cast<size_t>(logits_.size()));
  }

  absl::Status Reorder(absl::Span<const int32_t> parents) override {
    std::vector<std::vector<int32_t>> inputs;
    std::vector<std::shared_ptr<const EncodedSource>> sources;
    for (int32_t parent : parents) {
      if (parent < 0 || parent >= static_cast<int32_t>(inputs_.size())) {
        return absl::InvalidArgumentError("uncached decoder: parent out of range");
      }
      inputs.push_back(inputs_[parent]);
      sources.push_back(sources_[parent]);
    }
    inputs_ = std::move(inputs);
    sources_ = std::move(sources);
    return absl::OkStatus();
  }

  void AddHypothesis(std::shared_ptr<const EncodedSource> source) override {
    sources_.push_back(std::move(source));
    inputs_.emplace_back();
  }

 private:
  const Decoder& decoder_;
  std::vector<std::shared_ptr<const EncodedSource>> sources_;
  std::vector<std::vector<int32_t>> inputs_;
  Tensor logits_;
};

}  // namespace

std::unique_ptr<StepModel> MakeCachedStepModel(const Decoder& decoder,
                                               std::shared_ptr<BlockPool> pool) {
  return std::make_unique<CachedStepModel>(decoder, std::move(pool));
}

std::unique_ptr<StepModel> MakeUncachedStepModel(const Decoder& decoder) {
  return std::make_unique<UncachedStepModel>(decoder);
}

}  // namespace kvmt
