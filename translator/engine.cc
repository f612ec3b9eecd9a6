#include "translator/engine.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace kvmt {

Engine::Engine(const Model& model, const TranslatorOptions& options,
               ComputeTypeChoice compute_type, std::unique_ptr<const Encoder> encoder,
               std::unique_ptr<const Decoder> decoder)
    : options_(options),
      compute_type_(std::move(compute_type)),
      encoder_(std::move(encoder)),
      decoder_(std::move(decoder)),
      layout_(KVLayoutFor(model.config)),
      vocabulary_{model.config.decoder_start_id, model.config.target_eos_id,
                  model.config.suppressed_target_ids,
                  model.weights.output_projection.out_features()},
      pool_(std::make_shared<BlockPool>(
          layout_.block_floats(),
          options.cache_memory_bytes > 0
              ? options.cache_memory_bytes
              : Translator::DefaultCacheMemoryBytes(model.config, options.max_batch_size))),
      source_cache_(options.source_cache_bytes >= 0
                        ? options.source_cache_bytes
                        : pool_->total_blocks() * layout_.block_floats() *
                              static_cast<int64_t>(sizeof(float)) / 4) {
  pool_->SetEvictor([this] { return source_cache_.EvictIdle(); });
}

Engine::~Engine() {
  pool_->SetEvictor(nullptr);
  source_cache_.Clear();
}

int64_t Engine::BlocksNeeded(const SegmentIds& segment, const SearchOptions& options) const {
  return layout_.blocks_for(static_cast<int64_t>(segment.source.size())) +
         static_cast<int64_t>(std::max(1, options.beam_size)) *
             layout_.blocks_for(options.max_decoding_length);
}

absl::Status Engine::CheckFits(const SegmentIds& segment, const SearchOptions& options) const {
  const int64_t needed = BlocksNeeded(segment, options);
  if (needed <= pool_->total_blocks()) return absl::OkStatus();
  const int64_t block_bytes = layout_.block_floats() * static_cast<int64_t>(sizeof(float));
  return absl::ResourceExhaustedError(absl::StrCat(
      "a segment of ", segment.source.size(), " source tokens with beam size ", options.beam_size,
      " and max decoding length ", options.max_decoding_length, " needs ",
      needed * block_bytes / 1024, " KiB of KV cache, more than the cache memory limit of ",
      pool_->total_blocks() * block_bytes / 1024, " KiB"));
}

absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Engine::Encode(
    const std::vector<const std::vector<int32_t>*>& sources) const {
  std::vector<std::shared_ptr<const EncodedSource>> encoded(sources.size());
  std::vector<std::vector<int32_t>> missing;
  // Segment -> its source in `missing`: a source repeated in the batch is encoded once.
  std::vector<std::pair<size_t, size_t>> missing_index;
  absl::flat_hash_map<absl::Span<const int32_t>, size_t> first_missing;
  for (size_t i = 0; i < sources.size(); ++i) {
    encoded[i] = source_cache_.Lookup(*sources[i]);
    if (encoded[i] != nullptr) continue;
    const auto [it, inserted] =
        first_missing.try_emplace(absl::MakeConstSpan(*sources[i]), missing.size());
    if (inserted) missing.push_back(*sources[i]);
    missing_index.emplace_back(i, it->second);
  }
  if (missing.empty()) return encoded;
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> fresh =
      encoder_->Encode(missing, pool_);
  if (!fresh.ok()) return fresh.status();
  for (size_t j = 0; j < missing.size(); ++j) source_cache_.Insert(missing[j], (*fresh)[j]);
  for (const auto& [index, source] : missing_index) encoded[index] = (*fresh)[source];
  return encoded;
}

std::unique_ptr<StepModel> Engine::NewStepModel() const {
  return options_.use_cache ? MakeCachedStepModel(*decoder_, pool_)
                            : MakeUncachedStepModel(*decoder_);
}

void Engine::CountSegment(const SegmentIds& segment, const SearchResult& result) const {
  segments_ += 1;
  source_tokens_ += static_cast<int64_t>(segment.source.size());
  if (!result.hypotheses.empty()) {
    target_tokens_ += static_cast<int64_t>(result.hypotheses.front().ids.size());
  }
}

TranslationStats Engine::stats() const {
  return TranslationStats{segments_.load(), source_tokens_.load(), target_tokens_.load()};
}

CacheStats Engine::cache_stats() const { return CacheStats{pool_->stats(), source_cache_.stats()}; }

}  // namespace kvmt
