// The public API over the engine's Translator: plain structs in, proto messages inside.
#include "kvmt/kvmt.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/compute_type.h"
#include "kvmt/v1/translation.pb.h"
#include "model/model.h"
#include "translator/translator.h"

namespace kvmt::api {

struct Translator::Impl {
  std::shared_ptr<const Model> model;
  std::unique_ptr<kvmt::Translator> engine;
  int max_batch_size = 1;
  ModelInfo info;
};

namespace {

absl::Status NonNegative(absl::string_view name, int64_t value) {
  if (value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 0, got ", value));
}

absl::StatusOr<v1::DecodingOptions> ToProto(const TranslateOptions& o) {
  for (const auto& [name, value] : {std::pair<absl::string_view, int>{"beam_size", o.beam_size},
                                    {"num_hypotheses", o.num_hypotheses},
                                    {"max_decoding_length", o.max_decoding_length},
                                    {"min_decoding_length", o.min_decoding_length},
                                    {"max_input_length", o.max_input_length},
                                    {"no_repeat_ngram_size", o.no_repeat_ngram_size},
                                    {"sampling_topk", o.sampling_topk}}) {
    if (absl::Status status = NonNegative(name, value); !status.ok()) return status;
  }
  v1::DecodingOptions d;
  d.set_beam_size(static_cast<uint32_t>(o.beam_size));
  d.set_num_hypotheses(static_cast<uint32_t>(o.num_hypotheses));
  d.set_length_penalty(o.length_penalty);
  d.set_max_decoding_length(static_cast<uint32_t>(o.max_decoding_length));
  d.set_min_decoding_length(static_cast<uint32_t>(o.min_decoding_length));
  d.set_max_input_length(static_cast<uint32_t>(o.max_input_length));
  d.set_repetition_penalty(o.repetition_penalty);
  d.set_no_repeat_ngram_size(static_cast<uint32_t>(o.no_repeat_ngram_size));
  d.set_sampling_topk(static_cast<uint32_t>(o.sampling_topk));
  d.set_sampling_temperature(o.sampling_temperature);
  d.set_seed(o.seed);
  d.set_return_scores(o.return_scores);
  return d;
}

void ToProto(const Segment& segment, v1::Segment& out) {
  out.set_text(segment.text);
  for (const std::string& token : segment.tokens) out.add_tokens(token);
  out.set_target_prefix(segment.target_prefix);
  for (const std::string& token : segment.target_prefix_tokens) {
    out.add_target_prefix_tokens(token);
  }
}

SegmentResult FromProto(v1::SegmentResult& result) {
  SegmentResult out;
  for (v1::Hypothesis& hypothesis : *result.mutable_hypotheses()) {
    Hypothesis& h = out.hypotheses.emplace_back();
    h.text = std::move(*hypothesis.mutable_text());
    h.tokens.assign(std::make_move_iterator(hypothesis.mutable_tokens()->begin()),
                    std::make_move_iterator(hypothesis.mutable_tokens()->end()));
    h.score = hypothesis.score();
  }
  return out;
}

// The engine names a segment by its place in the batch it was given; the caller knows it by its
// place in the call.
absl::Status InCallerTerms(const absl::Status& status, const std::vector<size_t>& batch) {
  absl::string_view message = status.message();
  if (!absl::ConsumePrefix(&message, "segment ")) return status;
  const size_t digits = message.find(": ");
  size_t position = 0;
  if (digits == absl::string_view::npos ||
      !absl::SimpleAtoi(message.substr(0, digits), &position) || position >= batch.size()) {
    return status;
  }
  return absl::Status(status.code(),
                      absl::StrCat("segment ", batch[position], ": ", message.substr(digits + 2)));
}

int64_t WeightBytes(const TransformerWeights& w) {
  absl::flat_hash_set<const float*> seen;
  int64_t floats = 0;
  auto add = [&](const Tensor& tensor) {
    if (!tensor.empty() && seen.insert(tensor.data()).second) floats += tensor.size();
  };
  int64_t int8_bytes = 0;
  auto add_linear = [&](const LinearWeights& linear) {
    add(linear.weight);
    add(linear.bias);
    int8_bytes += linear.quantized.rows() * linear.quantized.cols();
    if (linear.quantized.rows() > 0) floats += linear.quantized.rows();  // Per-row scales.
  };
  auto add_norm = [&](const LayerNormWeights& norm) {
    add(norm.gamma);
    add(norm.beta);
  };
  add(w.source_embeddings);
  add(w.target_embeddings);
  add(w.source_positions);
  add(w.target_positions);
  for (const EncoderLayerWeights& layer : w.encoder_layers) {
    add_norm(layer.self_attention_norm);
    add_linear(layer.self_attention_qkv);
    add_linear(layer.self_attention_output);
    add_norm(layer.ffn_norm);
    add_linear(layer.ffn_inner);
    add_linear(layer.ffn_outer);
  }
  add_norm(w.encoder_final_norm);
  for (const DecoderLayerWeights& layer : w.decoder_layers) {
    add_norm(layer.self_attention_norm);
    add_linear(layer.self_attention_qkv);
    add_linear(layer.self_attention_output);
    add_norm(layer.cross_attention_norm);
    add_linear(layer.cross_attention_query);
    add_linear(layer.cross_attention_kv);
    add_linear(layer.cross_attention_output);
    add_norm(layer.ffn_norm);
    add_linear(layer.ffn_inner);
    add_linear(layer.ffn_outer);
  }
  add_norm(w.decoder_final_norm);
  add_linear(w.output_projection);
  return floats * static_cast<int64_t>(sizeof(float)) + int8_bytes;
}

}  // namespace

Translator::Translator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Translator::~Translator() = default;

absl::StatusOr<std::unique_ptr<Translator>> Translator::Load(const std::string& model_dir,
                                                             const LoadOptions& options) {
  if (options.cache_memory_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache_memory_bytes must be >= 0, got ", options.cache_memory_bytes));
  }
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(model_dir);
  if (!loaded.ok()) return loaded.status();
  auto impl = std::make_unique<Impl>();
  impl->model = *std::move(loaded);
  TranslatorOptions engine_options;
  engine_options.threads = options.threads;
  engine_options.max_batch_size = options.max_batch_size;
  engine_options.cache_memory_bytes = options.cache_memory_bytes;
  engine_options.source_cache_bytes = options.source_cache_bytes;
  if (options.compute_type != "auto") {
    absl::StatusOr<ComputeType> compute_type = ParseComputeType(options.compute_type);
    if (!compute_type.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("compute_type must be auto, float32, int8 or bfloat16, got '",
                       options.compute_type, "'"));
    }
    engine_options.compute_type = *compute_type;
  }
  absl::StatusOr<std::unique_ptr<kvmt::Translator>> engine =
      kvmt::Translator::Create(impl->model, engine_options);
  if (!engine.ok()) return engine.status();
  impl->engine = *std::move(engine);
  impl->max_batch_size = options.max_batch_size;

  const Model& model = *impl->model;
  ModelInfo& info = impl->info;
  info.directory = model_dir;
  info.format = model.config.format;
  info.encoder_layers = model.config.encoder_layers;
  info.decoder_layers = model.config.decoder_layers;
  info.d_model = model.config.d_model;
  info.num_heads = model.config.num_heads;
  info.source_vocabulary_size = static_cast<int>(model.source_vocabulary.size());
  info.target_vocabulary_size = static_cast<int>(model.target_vocabulary.size());
  info.sentencepiece = model.has_sentencepiece;
  info.compute_type = std::string(ComputeTypeName(impl->engine->compute_type().type));
  info.weight_bytes = WeightBytes(model.weights);
  const CacheStats cache = impl->engine->cache_stats();
  info.cache_memory_bytes = cache.pool.total_blocks * cache.pool.block_bytes;
  return std::unique_ptr<Translator>(new Translator(std::move(impl)));
}

const ModelInfo& Translator::info() const { return impl_->info; }

absl::Status Translator::Translate(const std::vector<Segment>& segments,
                                   const TranslateOptions& options,
                                   const SegmentCallback& on_segment) const {
  absl::StatusOr<v1::DecodingOptions> decoding = ToProto(options);
  if (!decoding.ok()) return decoding.status();
  // Batches of similar lengths pad little; each result goes back under its caller's index.
  std::vector<size_t> order(segments.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto length = [&segments](size_t i) {
    return segments[i].tokens.empty() ? segments[i].text.size() : segments[i].tokens.size();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&length](size_t a, size_t b) { return length(a) < length(b); });
  const size_t batch_size = static_cast<size_t>(std::max(1, impl_->max_batch_size));
  for (size_t begin = 0; begin < order.size(); begin += batch_size) {
    const std::vector<size_t> batch(
        order.begin() + static_cast<std::ptrdiff_t>(begin),
        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + batch_size)));
    v1::TranslateRequest request;
    *request.mutable_options() = *decoding;
    for (size_t index : batch) ToProto(segments[index], *request.add_segments());
    absl::StatusOr<v1::TranslateResponse> response = impl_->engine->Translate(request);
    if (!response.ok()) return InCallerTerms(response.status(), batch);
    if (response->results_size() != static_cast<int>(batch.size())) {
      return absl::InternalError(absl::StrCat("the engine returned ", response->results_size(),
                                              " results for ", batch.size(), " segments"));
    }
    for (size_t k = 0; k < batch.size(); ++k) {
      on_segment(batch[k], FromProto(*response->mutable_results(static_cast<int>(k))));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SegmentResult>> Translator::Translate(
    const std::vector<Segment>& segments, const TranslateOptions& options) const {
  std::vector<SegmentResult> results(segments.size());
  absl::Status status = Translate(segments, options, [&results](size_t index, SegmentResult r) {
    results[index] = std::move(r);
  });
  if (!status.ok()) return status;
  return results;
}

absl::StatusOr<std::vector<SegmentResult>> Translator::TranslateTexts(
    const std::vector<std::string>& texts, const TranslateOptions& options) const {
  std::vector<Segment> segments(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) segments[i].text = texts[i];
  return Translate(segments, options);
}

}  // namespace kvmt::api
