#include "translator/translator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/ops.h"
#include "decoder/decoder.h"
#include "decoder/search/search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "translator/utf8.h"

namespace kvmt {
namespace {

constexpr int kDefaultBeamSize = 4;
constexpr int kDefaultMaxDecodingLength = 256;
constexpr int kDefaultMaxInputLength = 1024;

absl::Status CheckUtf8(absl::string_view text, size_t segment, absl::string_view field) {
  size_t offset = 0;
  if (IsValidUtf8(std::string_view(text.data(), text.size()), &offset)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("segment ", segment, ": ", field, " is not valid UTF-8 (byte ", offset, ")"));
}

// Token strings -> ids; unknown tokens map to `unk_id`, or fail when the vocabulary has none.
absl::StatusOr<std::vector<int32_t>> ToIds(const std::vector<std::string>& tokens,
                                           const Vocabulary& vocabulary, int32_t unk_id,
                                           size_t segment, absl::string_view side) {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& token : tokens) {
    int32_t id = vocabulary.Id(token);
    if (id < 0) {
      if (unk_id < 0) {
        return absl::InvalidArgumentError(absl::StrCat("segment ", segment, ": token '", token,
                                                       "' is not in the ", side,
                                                       " vocabulary, which has no unknown token"));
      }
      id = unk_id;
    }
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

// Blocks promised to a batch by admission, given back when the batch ends however it ends.
class Reservation {
 public:
  Reservation(BlockPool& pool, int64_t blocks) : pool_(pool), blocks_(blocks) {}
  ~Reservation() { pool_.Unreserve(blocks_); }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

 private:
  BlockPool& pool_;
  const int64_t blocks_;
};

class Translator::Impl {
 public:
  Impl(const Model& model, const TranslatorOptions& options, ComputeTypeChoice compute_type,
       std::unique_ptr<Encoder> encoder, std::unique_ptr<Decoder> decoder)
      : model(model),
        options(options),
        compute_type(std::move(compute_type)),
        encoder(std::move(encoder)),
        decoder(std::move(decoder)),
        layout(KVLayoutFor(model.config)),
        pool(std::make_shared<BlockPool>(
            layout.block_floats(),
            options.cache_memory_bytes > 0
                ? options.cache_memory_bytes
                : DefaultCacheMemoryBytes(model.config, options.max_batch_size))),
        source_cache(options.source_cache_bytes >= 0
                         ? options.source_cache_bytes
                         : pool->total_blocks() * layout.block_floats() *
                               static_cast<int64_t>(sizeof(float)) / 4) {
    pool->SetEvictor([this] { return source_cache.EvictIdle(); });
  }

  ~Impl() {
    pool->SetEvictor(nullptr);
    source_cache.Clear();
  }

  // Worst-case blocks of a segment: its source K/V plus a separate chain per beam.
  int64_t BlocksNeeded(const SegmentIds& segment, const SearchOptions& search_options) const {
    return layout.blocks_for(static_cast<int64_t>(segment.source.size())) +
           static_cast<int64_t>(std::max(1, search_options.beam_size)) *
               layout.blocks_for(search_options.max_decoding_length);
  }

  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> EncodeWithCache(
      const std::vector<SegmentIds>& segments, size_t begin, size_t end) const {
    std::vector<std::shared_ptr<const EncodedSource>> encoded(end - begin);
    std::vector<std::vector<int32_t>> missing;
    // Segment -> its source in `missing`: a source repeated in the batch is encoded once.
    std::vector<std::pair<size_t, size_t>> missing_index;
    absl::flat_hash_map<absl::Span<const int32_t>, size_t> first_missing;
    for (size_t i = begin; i < end; ++i) {
      encoded[i - begin] = source_cache.Lookup(segments[i].source);
      if (encoded[i - begin] != nullptr) continue;
      const auto [it, inserted] =
          first_missing.try_emplace(absl::MakeConstSpan(segments[i].source), missing.size());
      if (inserted) missing.push_back(segments[i].source);
      missing_index.emplace_back(i - begin, it->second);
    }
    if (missing.empty()) return encoded;
    absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> fresh =
        encoder->Encode(missing, pool);
    if (!fresh.ok()) return fresh.status();
    for (size_t j = 0; j < missing.size(); ++j) source_cache.Insert(missing[j], (*fresh)[j]);
    for (const auto& [segment, source] : missing_index) encoded[segment] = (*fresh)[source];
    return encoded;
  }

  absl::StatusOr<std::vector<SearchResult>> Run(const std::vector<SegmentIds>& segments,
                                                const SearchOptions& search_options) const {
    SetNumThreads(options.threads);
    const SearchVocabulary vocabulary{model.config.decoder_start_id, model.config.target_eos_id,
                                      model.config.suppressed_target_ids,
                                      model.weights.output_projection.out_features()};
    std::vector<SearchResult> results;
    results.reserve(segments.size());
    const size_t max_batch = static_cast<size_t>(std::max(1, options.max_batch_size));
    for (size_t begin = 0; begin < segments.size();) {
      // Admission: as many segments as the batch size and the pool allow; a segment that could
      // never fit is an error, one that cannot fit yet waits for other callers to finish.
      size_t end = begin;
      int64_t blocks = 0;
      while (end < segments.size() && end - begin < max_batch) {
        const int64_t needed = BlocksNeeded(segments[end], search_options);
        if (needed > pool->total_blocks()) {
          const int64_t block_bytes = layout.block_floats() * static_cast<int64_t>(sizeof(float));
          return absl::ResourceExhaustedError(absl::StrCat(
              "a segment of ", segments[end].source.size(), " source tokens with beam size ",
              search_options.beam_size, " and max decoding length ",
              search_options.max_decoding_length, " needs ", needed * block_bytes / 1024,
              " KiB of KV cache, more than the cache memory limit of ",
              pool->total_blocks() * block_bytes / 1024, " KiB"));
        }
        if (blocks + needed > pool->total_blocks()) break;
        blocks += needed;
        ++end;
      }
      if (!pool->Reserve(blocks, absl::InfiniteDuration())) {
        return absl::InternalError("cache admission: reservation refused");
      }
      const Reservation reservation(*pool, blocks);

      std::vector<std::vector<int32_t>> prefixes;
      for (size_t i = begin; i < end; ++i) prefixes.push_back(segments[i].target_prefix);
      absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded =
          EncodeWithCache(segments, begin, end);
      if (!encoded.ok()) return encoded.status();
      std::unique_ptr<StepModel> step_model =
          options.use_cache ? MakeCachedStepModel(*decoder, pool) : MakeUncachedStepModel(*decoder);
      absl::StatusOr<std::vector<SearchResult>> batch =
          Search(*step_model, *encoded, prefixes, search_options, vocabulary);
      if (!batch.ok()) return batch.status();
      for (size_t i = begin; i < end; ++i) {
        stats_source_tokens += static_cast<int64_t>(segments[i].source.size());
        const SearchResult& result = (*batch)[i - begin];
        if (!result.hypotheses.empty()) {
          stats_target_tokens += static_cast<int64_t>(result.hypotheses.front().ids.size());
        }
      }
      stats_segments += static_cast<int64_t>(end - begin);
      std::move(batch->begin(), batch->end(), std::back_inserter(results));
      begin = end;
    }
    return results;
  }

  const Model& model;
  const TranslatorOptions options;
  const ComputeTypeChoice compute_type;
  const std::unique_ptr<const Encoder> encoder;
  const std::unique_ptr<const Decoder> decoder;
  const KVBlockLayout layout;
  const std::shared_ptr<BlockPool> pool;
  mutable SourceCache source_cache;
  mutable std::atomic<int64_t> stats_segments{0};
  mutable std::atomic<int64_t> stats_source_tokens{0};
  mutable std::atomic<int64_t> stats_target_tokens{0};
};

Translator::Translator(std::shared_ptr<const Model> model, std::unique_ptr<Impl> impl)
    : model_(std::move(model)), impl_(std::move(impl)) {}

Translator::~Translator() = default;

absl::StatusOr<std::unique_ptr<Translator>> Translator::Create(std::shared_ptr<const Model> model,
                                                               const TranslatorOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("Translator::Create: no model");
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 0, got ", options.threads));
  }
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max batch size must be >= 1, got ", options.max_batch_size));
  }
  ComputeTypeChoice compute_type = ResolveComputeType(options.compute_type, *model);
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::Create(model->config, model->weights, compute_type.type);
  if (!encoder.ok()) return encoder.status();
  absl::StatusOr<std::unique_ptr<Decoder>> decoder =
      Decoder::Create(model->config, model->weights, compute_type.type);
  if (!decoder.ok()) return decoder.status();
  auto impl = std::make_unique<Impl>(*model, options, std::move(compute_type), *std::move(encoder),
                                     *std::move(decoder));
  return std::unique_ptr<Translator>(new Translator(std::move(model), std::move(impl)));
}

const ComputeTypeChoice& Translator::compute_type() const { return impl_->compute_type; }

ComputeTypeChoice ResolveComputeType(std::optional<ComputeType> requested, const Model& model) {
  const bool int8_model = model.weights.has_int8_weights();
  ComputeTypeChoice choice;
  if (!requested.has_value()) {
    choice.type = int8_model ? ComputeType::kInt8 : ComputeType::kFloat32;
    choice.note = int8_model ? "auto: the model is int8" : "auto: the model is not int8";
  } else {
    choice.type = *requested;
  }
  if (choice.type == ComputeType::kBFloat16 && !CpuHasNativeBFloat16()) {
    choice.note = absl::StrCat("bfloat16 asked for, but this CPU (", CpuIsaName(),
                               ") has neither AVX512-BF16 nor AMX: float32 instead");
    choice.type = ComputeType::kFloat32;
  }
  if (choice.type == ComputeType::kInt8 && !CpuHasInt8Dot()) {
    choice.note = absl::StrCat("int8 asked for, but this CPU (", CpuIsaName(),
                               ") has neither VNNI nor AMX, without which int8 products can "
                               "saturate: float32 instead");
    choice.type = ComputeType::kFloat32;
  }
  return choice;
}

CacheStats Translator::cache_stats() const {
  return CacheStats{impl_->pool->stats(), impl_->source_cache.stats()};
}

int64_t Translator::DefaultCacheMemoryBytes(const ModelConfig& config, int max_batch_size) {
  const KVBlockLayout layout = KVLayoutFor(config);
  const int64_t block_bytes = layout.block_floats() * static_cast<int64_t>(sizeof(float));
  const int64_t per_segment = (layout.blocks_for(256) + 4 * layout.blocks_for(256)) * block_bytes;
  const int64_t wanted = 2 * per_segment * std::max(1, max_batch_size);
  const int64_t physical = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  return std::max<int64_t>(std::min(wanted, physical / 4), 4 * per_segment);
}

TranslationStats Translator::stats() const {
  return TranslationStats{impl_->stats_segments.load(), impl_->stats_source_tokens.load(),
                          impl_->stats_target_tokens.load()};
}

absl::StatusOr<SearchOptions> Translator::ResolveOptions(const v1::DecodingOptions& o) const {
  SearchOptions s;
  s.beam_size = o.beam_size() > 0                      ? static_cast<int>(o.beam_size())
                : model_->config.default_beam_size > 0 ? model_->config.default_beam_size
                                                       : kDefaultBeamSize;
  s.num_hypotheses = o.num_hypotheses() > 0 ? static_cast<int>(o.num_hypotheses()) : 1;
  if (s.num_hypotheses > s.beam_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_hypotheses (", s.num_hypotheses, ") must not exceed beam_size (", s.beam_size, ")"));
  }
  s.length_penalty = o.has_length_penalty() ? o.length_penalty() : 1.0f;
  if (s.length_penalty < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("length_penalty must be >= 0, got ", s.length_penalty));
  }
  s.max_decoding_length = o.max_decoding_length() > 0 ? static_cast<int>(o.max_decoding_length())
                                                      : kDefaultMaxDecodingLength;
  // The start token takes position 0, so a hypothesis can have at most positions - 1 tokens.
  s.max_decoding_length = std::min<int>(
      s.max_decoding_length, static_cast<int>(model_->weights.target_positions.dim(0)) - 1);
  s.min_decoding_length = static_cast<int>(o.min_decoding_length());
  if (s.min_decoding_length > s.max_decoding_length) {
    return absl::InvalidArgumentError(absl::StrCat("min_decoding_length (", s.min_decoding_length,
                                                   ") exceeds max_decoding_length (",
                                                   s.max_decoding_length, ")"));
  }
  s.repetition_penalty =
      o.has_repetition_penalty() && o.repetition_penalty() != 0 ? o.repetition_penalty() : 1.0f;
  if (s.repetition_penalty < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be > 0, got ", s.repetition_penalty));
  }
  s.no_repeat_ngram_size = static_cast<int>(o.no_repeat_ngram_size());
  s.sampling_topk = o.sampling_topk() > 1 ? static_cast<int>(o.sampling_topk()) : 1;
  s.sampling_temperature = o.has_sampling_temperature() ? o.sampling_temperature() : 1.0f;
  if (!(s.sampling_temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling_temperature must be > 0, got ", s.sampling_temperature));
  }
  if (s.sampling_topk > 1 && s.beam_size != 1) {
    return absl::InvalidArgumentError(absl::StrCat("sampling (sampling_topk ", s.sampling_topk,
                                                   ") requires beam_size 1, got ", s.beam_size));
  }
  s.seed = o.seed();
  s.return_end_token = o.return_end_token();
  return s;
}

absl::StatusOr<std::vector<SearchResult>> Translator::TranslateIds(
    const std::vector<SegmentIds>& segments, const SearchOptions& options) const {
  return impl_->Run(segments, options);
}

absl::StatusOr<v1::TranslateResponse> Translator::Translate(
    const v1::TranslateRequest& request) const {
  if (request.segments().empty()) {
    return absl::InvalidArgumentError("request has no segments");
  }
  absl::StatusOr<SearchOptions> options = ResolveOptions(request.options());
  if (!options.ok()) return options.status();
  const v1::DecodingOptions& decoding = request.options();
  const int max_input_length = decoding.max_input_length() > 0
                                   ? static_cast<int>(decoding.max_input_length())
                                   : kDefaultMaxInputLength;
  const ModelConfig& config = model_->config;
  const int special_tokens = (config.add_source_bos ? 1 : 0) + (config.add_source_eos ? 1 : 0);
  if (max_input_length <= special_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_input_length ", max_input_length, " leaves no room for source tokens"));
  }

  // Validate and tokenise everything first: a bad segment fails the request before any work.
  std::vector<SegmentIds> segments;
  std::vector<size_t> segment_index;  // Request position of segments[i].
  for (int i = 0; i < request.segments_size(); ++i) {
    const v1::Segment& segment = request.segments(i);
    const size_t index = static_cast<size_t>(i);
    if (!segment.text().empty() && !segment.tokens().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("segment ", i, ": give text or tokens, not both"));
    }
    if (!segment.target_prefix().empty() && !segment.target_prefix_tokens().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("segment ", i, ": give target_prefix or target_prefix_tokens, not both"));
    }
    std::vector<std::string> tokens(segment.tokens().begin(), segment.tokens().end());
    for (const std::string& token : tokens) {
      if (absl::Status status = CheckUtf8(token, index, "a token"); !status.ok()) return status;
    }
    if (!segment.text().empty()) {
      if (absl::Status status = CheckUtf8(segment.text(), index, "text"); !status.ok()) {
        return status;
      }
      absl::StatusOr<std::vector<std::string>> pieces =
          model_->source_tokenizer->Encode(segment.text());
      if (!pieces.ok()) return pieces.status();
      tokens = std::move(*pieces);
    }
    if (tokens.empty()) continue;  // Nothing to translate: an empty result.

    std::vector<std::string> prefix_tokens(segment.target_prefix_tokens().begin(),
                                           segment.target_prefix_tokens().end());
    for (const std::string& token : prefix_tokens) {
      if (absl::Status status = CheckUtf8(token, index, "a target prefix token"); !status.ok()) {
        return status;
      }
    }
    if (!segment.target_prefix().empty()) {
      if (absl::Status status = CheckUtf8(segment.target_prefix(), index, "target_prefix");
          !status.ok()) {
        return status;
      }
      absl::StatusOr<std::vector<std::string>> pieces =
          model_->target_tokenizer->Encode(segment.target_prefix());
      if (!pieces.ok()) return pieces.status();
      prefix_tokens = std::move(*pieces);
    }

    const size_t keep = static_cast<size_t>(max_input_length - special_tokens);
    if (tokens.size() > keep) tokens.resize(keep);
    absl::StatusOr<std::vector<int32_t>> source_ids =
        ToIds(tokens, model_->source_vocabulary, config.source_unk_id, index, "source");
    if (!source_ids.ok()) return source_ids.status();
    absl::StatusOr<std::vector<int32_t>> prefix_ids =
        ToIds(prefix_tokens, model_->target_vocabulary, config.target_unk_id, index, "target");
    if (!prefix_ids.ok()) return prefix_ids.status();

    SegmentIds ids;
    if (config.add_source_bos) ids.source.push_back(config.source_bos_id);
    ids.source.insert(ids.source.end(), source_ids->begin(), source_ids->end());
    if (config.add_source_eos) ids.source.push_back(config.source_eos_id);
    ids.target_prefix = std::move(*prefix_ids);
    segments.push_back(std::move(ids));
    segment_index.push_back(index);
  }

  absl::StatusOr<std::vector<SearchResult>> results = TranslateIds(segments, *options);
  if (!results.ok()) return results.status();

  v1::TranslateResponse response;
  for (int i = 0; i < request.segments_size(); ++i) response.add_results();
  for (size_t i = 0; i < results->size(); ++i) {
    v1::SegmentResult* segment_result = response.mutable_results(segment_index[i]);
    for (const SearchHypothesis& found : (*results)[i].hypotheses) {
      v1::Hypothesis* hypothesis = segment_result->add_hypotheses();
      std::vector<std::string> words;
      for (int32_t id : found.ids) {
        hypothesis->add_tokens(model_->target_vocabulary.Token(id));
        if (id != config.target_eos_id) words.push_back(model_->target_vocabulary.Token(id));
      }
      absl::StatusOr<std::string> text = model_->target_tokenizer->Decode(words);
      if (!text.ok()) return text.status();
      hypothesis->set_text(*std::move(text));
      if (decoding.return_scores()) hypothesis->set_score(found.score);
    }
  }
  // Segments with nothing to translate get one empty hypothesis, like any other result.
  for (v1::SegmentResult& segment_result : *response.mutable_results()) {
    if (segment_result.hypotheses().empty()) segment_result.add_hypotheses();
  }
  return response;
}

}  // namespace kvmt
