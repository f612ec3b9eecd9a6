// Translator: the engine's one entry point — requests in the proto's messages, results out.
// The CLI, the service and the C++ library all call it. Thread-safe for concurrent callers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/block_pool.h"
#include "cache/source_cache.h"
#include "core/compute_type.h"
#include "decoder/search/search_options.h"
#include "kvmt/v1/translation.pb.h"
#include "model/model.h"

namespace kvmt {

struct TranslatorOptions {
  int threads = 0;  // 0: all cores.
  // Arithmetic of the linear layers; unset ("auto"): int8 for an int8 model, else float32.
  std::optional<ComputeType> compute_type;
  bool use_cache = true;    // false: the textbook decoder that recomputes the whole prefix.
  int max_batch_size = 32;  // Segments encoded and decoded together (fewer if memory is short).
  // Budget of the K/V block pool (self-attention caches and source K/V), allocated once.
  // 0: DefaultCacheMemoryBytes.
  int64_t cache_memory_bytes = 0;
  // Byte limit of the source cache (encoder results kept across calls). -1: a quarter of the
  // pool; 0: off.
  int64_t source_cache_bytes = -1;
};

// Memory accounting of a Translator's K/V cache.
struct CacheStats {
  BlockPoolStats pool;
  SourceCacheStats source_cache;
};

// Statistics of the calls made so far (for the CLI summary and the service's metrics).
struct TranslationStats {
  int64_t segments = 0;
  int64_t source_tokens = 0;
  int64_t target_tokens = 0;
};

// The compute type a Translator runs, and why when it is not the one asked for.
struct ComputeTypeChoice {
  ComputeType type = ComputeType::kFloat32;
  std::string note;  // E.g. "auto: the model is int8"; a fallback says what the CPU lacks.
};

// Resolves `requested` (unset: auto) for `model` on this CPU: bfloat16 without AVX512-BF16 or
// AMX, and int8 without VNNI or AMX, fall back to float32.
ComputeTypeChoice ResolveComputeType(std::optional<ComputeType> requested, const Model& model);

// One segment, as ids.
struct SegmentIds {
  std::vector<int32_t> source;
  std::vector<int32_t> target_prefix;
};

// Limits a server puts on requests; 0: none. Going over one is INVALID_ARGUMENT.
struct RequestLimits {
  int max_segments = 0;           // Segments per request.
  int64_t max_segment_bytes = 0;  // Bytes of a segment's text or tokens.
  int max_segment_tokens = 0;     // Source tokens of a segment, after tokenisation.
  int max_beam_size = 0;
};

// A request checked and tokenised: what the engine decodes and where each result goes. Segments
// with nothing to translate are left out; their result is one empty hypothesis.
struct PreparedRequest {
  SearchOptions options;
  bool return_scores = false;
  int num_segments = 0;              // The request's segments, empty ones included.
  std::vector<SegmentIds> segments;  // The non-empty ones, in request order.
  std::vector<int> positions;        // Request position of segments[i].
};

class Engine;

class Translator {
 public:
  static absl::StatusOr<std::unique_ptr<Translator>> Create(std::shared_ptr<const Model> model,
                                                            const TranslatorOptions& options);
  ~Translator();

  // Validates the whole request first (text or tokens, UTF-8, vocabulary, limits), then
  // translates every segment; the response has one result per segment, in order.
  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) const;

  // The validation and tokenisation of Translate, without decoding.
  absl::StatusOr<PreparedRequest> Prepare(const v1::TranslateRequest& request,
                                          const RequestLimits& limits = {}) const;
  // The proto result of one segment: tokens, detokenised text and (on request) scores.
  absl::StatusOr<v1::SegmentResult> MakeSegmentResult(const SearchResult& result,
                                                      bool return_scores) const;
  // The target vocabulary entry of `id`.
  const std::string& TargetToken(int32_t id) const;

  // The same search on ids: for tests and tools that bypass tokenisation.
  absl::StatusOr<std::vector<SearchResult>> TranslateIds(const std::vector<SegmentIds>& segments,
                                                         const SearchOptions& options) const;

  // DecodingOptions with its zero-means-default fields resolved for this model.
  absl::StatusOr<SearchOptions> ResolveOptions(const v1::DecodingOptions& options) const;

  const Model& model() const { return *model_; }
  // The compute and memory behind this Translator, which the Scheduler shares.
  const Engine& engine() const { return *engine_; }
  const ComputeTypeChoice& compute_type() const;
  TranslationStats stats() const;
  CacheStats cache_stats() const;

  // The pool budget used when none is given: room for a full batch of segments with 256 source
  // tokens, beam 4 and 256 target tokens, twice over, within a quarter of physical memory.
  static int64_t DefaultCacheMemoryBytes(const ModelConfig& config, int max_batch_size);

 private:
  Translator(std::shared_ptr<const Model> model, std::unique_ptr<Engine> engine);
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace kvmt
