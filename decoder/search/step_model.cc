#include "decoder/search/step_model.h"

#include "cache/block_table_cache.h"

namespace kvmt {
namespace {

class CachedStepModel : public StepModel {
 public:
  CachedStepModel(const Decoder& decoder,
                  const std::vector<std::shared_ptr<const EncodedSource>>& sources)
      : decoder_(decoder),
        state_(std::make_unique<BlockTableCache>(decoder.config().decoder_layers,
                                                 decoder.config().d_model)) {
    for (const auto& source : sources) state_.AddHypothesis(source);
  }

  absl::Status Logits(absl::Span<const int32_t> tokens, Tensor& logits) override {
    return decoder_.Step(tokens, state_, logits);
  }

  absl::Status Reorder(absl::Span<const int32_t> parents) override {
    return state_.Reorder(parents);
  }

 private:
  const Decoder& decoder_;
  DecoderState state_;
};

class UncachedStepModel : public StepModel {
 public:
  UncachedStepModel(const Decoder& decoder,
                    const std::vector<std::shared_ptr<const EncodedSource>>& sources)
      : decoder_(decoder), sources_(sources), inputs_(sources.size()) {}

  absl::Status Logits(absl::Span<const int32_t> tokens, Tensor& logits) override {
    if (tokens.size() != inputs_.size()) {
      return absl::InvalidArgumentError("uncached decoder: token count differs from hypotheses");
    }
    std::vector<const EncodedSource*> sources(sources_.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      inputs_[i].push_back(tokens[i]);
      sources[i] = sources_[i].get();
    }
    return decoder_.StepWithoutCache(inputs_, sources, logits);
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

 private:
  const Decoder& decoder_;
  std::vector<std::shared_ptr<const EncodedSource>> sources_;
  std::vector<std::vector<int32_t>> inputs_;
};

}  // namespace

std::unique_ptr<StepModel> MakeCachedStepModel(
    const Decoder& decoder, const std::vector<std::shared_ptr<const EncodedSource>>& sources) {
  return std::make_unique<CachedStepModel>(decoder, sources);
}

std::unique_ptr<StepModel> MakeUncachedStepModel(
    const Decoder& decoder, const std::vector<std::shared_ptr<const EncodedSource>>& sources) {
  return std::make_unique<UncachedStepModel>(decoder, sources);
}

}  // namespace kvmt
