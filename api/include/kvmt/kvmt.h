// kvmt as a library: load a translation model (CTranslate2 or HuggingFace Marian directory) and
// translate batches of segments on the CPU, synchronously or with a callback per finished segment.
// Errors are absl::Status values, never exceptions. A Translator is safe to share between threads.
//
//   absl::StatusOr<std::unique_ptr<kvmt::api::Translator>> translator =
//       kvmt::api::Translator::Load("/models/opus-mt-en-de");
//   if (!translator.ok()) return translator.status();
//   absl::StatusOr<std::vector<kvmt::api::SegmentResult>> results =
//       (*translator)->TranslateTexts({"Hello world.", "How are you?"});
//   // (*results)[i].hypotheses[0].text is the translation of text i.
//
// Installed with `cmake --install BUILD --prefix P`; a CMake project uses it with
// `find_package(kvmt CONFIG REQUIRED)` and `target_link_libraries(app PRIVATE kvmt::kvmt)`
// (see examples/embed/ and docs/INTEGRATION.md). The library is one shared object; its own
// dependencies (oneDNN, protobuf, SentencePiece) stay inside it, and this header needs abseil.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KVMT_API __attribute__((visibility("default")))

namespace kvmt::api {

// How the model runs; fixed when it is loaded.
struct LoadOptions {
  int threads = 0;  // Compute threads, shared by all callers; 0: all cores.
  // Arithmetic of the linear layers: "auto" (int8 for int8 models, else float32), "float32",
  // "int8" or "bfloat16".
  std::string compute_type = "auto";
  int max_batch_size = 32;  // Segments decoded together.
  // Budget of the K/V cache (decoder self-attention and source keys/values), allocated at load.
  // 0: room for two full batches of 256-token segments at beam 4, within a quarter of the
  // machine's memory. A batch that does not fit waits for memory or is split.
  int64_t cache_memory_bytes = 0;
  // Encoder results kept for sources seen again (exact token match); -1: a quarter of the cache
  // budget; 0: off.
  int64_t source_cache_bytes = -1;
};

// How one call translates; the defaults are those of kvmt.v1.DecodingOptions and of
// kvmt-translate (see docs/DECODING.md for the search itself).
struct TranslateOptions {
  int beam_size = 0;                // 0: the model's default, else 4. 1: greedy search.
  int num_hypotheses = 1;           // Per segment, best first; at most beam_size.
  float length_penalty = 1.0f;      // Final score = log-probability / length^length_penalty.
  int max_decoding_length = 256;    // Target tokens per hypothesis, prefix and </s> included.
  int min_decoding_length = 0;      // </s> is not allowed before this many target tokens.
  int max_input_length = 1024;      // Longer sources are truncated to this many tokens.
  float repetition_penalty = 1.0f;  // > 1 penalises tokens already generated.
  int no_repeat_ngram_size = 0;     // 0: off.
  int sampling_topk = 1;            // 1: argmax; k > 1 samples among the k best (beam_size 1).
  float sampling_temperature = 1.0f;
  uint64_t seed = 0;           // For sampling; 0: a fixed default.
  bool return_scores = false;  // Fill Hypothesis::score.
};

// One source segment: `text` (tokenised by the model's SentencePiece model, or split on spaces
// when it has none) or `tokens`, not both; optionally a forced start of the translation.
struct Segment {
  std::string text;
  std::vector<std::string> tokens;
  std::string target_prefix;
  std::vector<std::string> target_prefix_tokens;
};

struct Hypothesis {
  std::string text;                 // Detokenised.
  std::vector<std::string> tokens;  // Target vocabulary entries.
  float score = 0;                  // With return_scores: the length-normalised log-probability.
};

struct SegmentResult {
  std::vector<Hypothesis> hypotheses;  // Best first; one empty hypothesis for an empty segment.
};

// What was loaded, and the memory it holds (for sizing; see docs/INTEGRATION.md).
struct ModelInfo {
  std::string directory;
  std::string format;  // "ctranslate2" or "marian".
  int encoder_layers = 0;
  int decoder_layers = 0;
  int d_model = 0;
  int num_heads = 0;
  int source_vocabulary_size = 0;
  int target_vocabulary_size = 0;
  bool sentencepiece = false;  // false: text is split on spaces and tabs.
  std::string compute_type;    // The one in use: "float32", "int8" or "bfloat16".
  // The model's weights as loaded: float32, or int8 with per-row scales for the linear layers
  // of an int8 CTranslate2 model. The compute type's kernels may hold a repacked copy besides.
  int64_t weight_bytes = 0;
  int64_t cache_memory_bytes = 0;  // The K/V cache budget actually allocated.
};

class KVMT_API Translator {
 public:
  // Loads the model directory. NOT_FOUND / INVALID_ARGUMENT / DATA_LOSS name the file and what
  // is wrong with it; INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<Translator>> Load(const std::string& model_dir,
                                                          const LoadOptions& options = {});
  ~Translator();
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  // One result per segment, in order, or the first error: INVALID_ARGUMENT for a malformed
  // segment or option (the message names the segment), RESOURCE_EXHAUSTED for a segment that
  // can never fit the cache budget.
  absl::StatusOr<std::vector<SegmentResult>> Translate(const std::vector<Segment>& segments,
                                                       const TranslateOptions& options = {}) const;
  absl::StatusOr<std::vector<SegmentResult>> TranslateTexts(
      const std::vector<std::string>& texts, const TranslateOptions& options = {}) const;

  // Calls `on_segment(index, result)` on the calling thread as each segment's result is final,
  // exactly once per segment of a successful call, in no particular order (segments are
  // batched by length; with this engine they finish a batch at a time). An error ends the call
  // early; the segments reported before it keep their results.
  using SegmentCallback = std::function<void(size_t index, SegmentResult result)>;
  absl::Status Translate(const std::vector<Segment>& segments, const TranslateOptions& options,
                         const SegmentCallback& on_segment) const;

  const ModelInfo& info() const;

 private:
  struct Impl;
  explicit Translator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvmt::api
