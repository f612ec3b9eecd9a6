// Engine: one model's compute and K/V memory — encoder, decoder, block pool, source cache —
// shared by the Translator's whole-batch path and the Scheduler's decoding loop. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/block_pool.h"
#include "cache/encoded_source.h"
#include "cache/source_cache.h"
#include "decoder/decoder.h"
#include "decoder/search/batch_search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "model/model.h"
#include "translator/translator.h"

namespace kvmt {

class Engine {
 public:
  Engine(const Model& model, const TranslatorOptions& options, ComputeTypeChoice compute_type,
         std::unique_ptr<const Encoder> encoder, std::unique_ptr<const Decoder> decoder);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Worst-case pool blocks of a segment: its source K/V plus a separate chain per beam. What
  // admission reserves, so that a running segment never finds the pool empty.
  int64_t BlocksNeeded(const SegmentIds& segment, const SearchOptions& options) const;
  // ResourceExhausted, naming the sizes, when `segment` could never fit in the pool.
  absl::Status CheckFits(const SegmentIds& segment, const SearchOptions& options) const;

  // Encoder results for `sources`, taken from the source cache where it has them; the new ones
  // are encoded in one batch and kept there.
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Encode(
      const std::vector<const std::vector<int32_t>*>& sources) const;

  // A decoding state over the pool: the cached decoder, or the textbook one with use_cache off.
  std::unique_ptr<StepModel> NewStepModel() const;
  const SearchVocabulary& search_vocabulary() const { return vocabulary_; }
  BlockPool& pool() const { return *pool_; }
  const TranslatorOptions& options() const { return options_; }
  const ComputeTypeChoice& compute_type() const { return compute_type_; }

  // Statistics: a segment decoded to the end.
  void CountSegment(const SegmentIds& segment, const SearchResult& result) const;
  TranslationStats stats() const;
  CacheStats cache_stats() const;

 private:
  const TranslatorOptions options_;
  const ComputeTypeChoice compute_type_;
  const std::unique_ptr<const Encoder> encoder_;
  const std::unique_ptr<const Decoder> decoder_;
  const KVBlockLayout layout_;
  const SearchVocabulary vocabulary_;
  const std::shared_ptr<BlockPool> pool_;
  mutable SourceCache source_cache_;
  mutable std::atomic<int64_t> segments_{0};
  mutable std::atomic<int64_t> source_tokens_{0};
  mutable std::atomic<int64_t> target_tokens_{0};
};

}  // namespace kvmt
