#include "translator/translator.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/ops.h"
#include "core/status_macros.h"
#include "decoder/search/search.h"
#include "translator/engine.h"
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

// A proto uint32 as an int; values past INT_MAX (which no limit allows anyway) saturate rather
// than wrap to negative numbers.
int AsInt(uint32_t value) {
  return static_cast<int>(std::min<uint32_t>(value, std::numeric_limits<int>::max()));
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

Translator::Translator(std::shared_ptr<const Model> model, std::unique_ptr<Engine> engine)
    : model_(std::move(model)), engine_(std::move(engine)) {}

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
  // oneDNN sizes a primitive's thread team when the primitive is made, which is here.
  SetNumThreads(options.threads);
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::Create(model->config, model->weights, compute_type.type);
  if (!encoder.ok()) return encoder.status();
  absl::StatusOr<std::unique_ptr<Decoder>> decoder =
      Decoder::Create(model->config, model->weights, compute_type.type);
  if (!decoder.ok()) return decoder.status();
  auto engine = std::make_unique<Engine>(*model, options, std::move(compute_type),
                                         *std::move(encoder), *std::move(decoder));
  return std::unique_ptr<Translator>(new Translator(std::move(model), std::move(engine)));
}

CacheStats Translator::cache_stats() const { return engine_->cache_stats(); }

const ComputeTypeChoice& Translator::compute_type() const { return engine_->compute_type(); }

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

int64_t Translator::DefaultCacheMemoryBytes(const ModelConfig& config, int max_batch_size) {
  const KVBlockLayout layout = KVLayoutFor(config);
  const int64_t block_bytes = layout.block_floats() * static_cast<int64_t>(sizeof(float));
  const int64_t per_segment = (layout.blocks_for(256) + 4 * layout.blocks_for(256)) * block_bytes;
  const int64_t wanted = 2 * per_segment * std::max(1, max_batch_size);
  const int64_t physical = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  return std::max<int64_t>(std::min(wanted, physical / 4), 4 * per_segment);
}

TranslationStats Translator::stats() const { return engine_->stats(); }

absl::StatusOr<SearchOptions> Translator::ResolveOptions(const v1::DecodingOptions& o) const {
  SearchOptions s;
  s.beam_size = o.beam_size() > 0                      ? AsInt(o.beam_size())
                : model_->config.default_beam_size > 0 ? model_->config.default_beam_size
                                                       : kDefaultBeamSize;
  s.num_hypotheses = o.num_hypotheses() > 0 ? AsInt(o.num_hypotheses()) : 1;
  if (s.num_hypotheses > s.beam_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_hypotheses (", s.num_hypotheses, ") must not exceed beam_size (", s.beam_size, ")"));
  }
  s.length_penalty = o.has_length_penalty() ? o.length_penalty() : 1.0f;
  if (s.length_penalty < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("length_penalty must be >= 0, got ", s.length_penalty));
  }
  s.max_decoding_length =
      o.max_decoding_length() > 0 ? AsInt(o.max_decoding_length()) : kDefaultMaxDecodingLength;
  // The start token takes position 0, so a hypothesis can have at most positions - 1 tokens.
  s.max_decoding_length = std::min<int>(
      s.max_decoding_length, static_cast<int>(model_->weights.target_positions.dim(0)) - 1);
  s.min_decoding_length = AsInt(o.min_decoding_length());
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
  s.no_repeat_ngram_size = AsInt(o.no_repeat_ngram_size());
  s.sampling_topk = o.sampling_topk() > 1 ? AsInt(o.sampling_topk()) : 1;
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
    const std::vector<SegmentIds>& segments, const SearchOptions& search_options) const {
  SetNumThreads(engine_->options().threads);
  BlockPool& pool = engine_->pool();
  std::vector<SearchResult> results;
  results.reserve(segments.size());
  const size_t max_batch = static_cast<size_t>(std::max(1, engine_->options().max_batch_size));
  for (size_t begin = 0; begin < segments.size();) {
    // Admission: as many segments as the batch size and the pool allow; a segment that could
    // never fit is an error, one that cannot fit yet waits for other callers to finish.
    size_t end = begin;
    int64_t blocks = 0;
    while (end < segments.size() && end - begin < max_batch) {
      KVMT_RETURN_IF_ERROR(engine_->CheckFits(segments[end], search_options));
      const int64_t needed = engine_->BlocksNeeded(segments[end], search_options);
      if (blocks + needed > pool.total_blocks()) break;
      blocks += needed;
      ++end;
    }
    if (!pool.Reserve(blocks, absl::InfiniteDuration())) {
      return absl::InternalError("cache admission: reservation refused");
    }
    const Reservation reservation(pool, blocks);

    std::vector<const std::vector<int32_t>*> sources;
    std::vector<std::vector<int32_t>> prefixes;
    for (size_t i = begin; i < end; ++i) {
      sources.push_back(&segments[i].source);
      prefixes.push_back(segments[i].target_prefix);
    }
    KVMT_ASSIGN_OR_RETURN(std::vector<std::shared_ptr<const EncodedSource>> encoded,
                          engine_->Encode(sources));
    std::unique_ptr<StepModel> step_model = engine_->NewStepModel();
    KVMT_ASSIGN_OR_RETURN(
        std::vector<SearchResult> batch,
        Search(*step_model, encoded, prefixes, search_options, engine_->search_vocabulary()));
    for (size_t i = begin; i < end; ++i) engine_->CountSegment(segments[i], batch[i - begin]);
    std::move(batch.begin(), batch.end(), std::back_inserter(results));
    begin = end;
  }
  return results;
}

absl::StatusOr<PreparedRequest> Translator::Prepare(const v1::TranslateRequest& request,
                                                    const RequestLimits& limits) const {
  if (request.segments().empty()) {
    return absl::InvalidArgumentError("request has no segments");
  }
  if (limits.max_segments > 0 && request.segments_size() > limits.max_segments) {
    return absl::InvalidArgumentError(absl::StrCat("request has ", request.segments_size(),
                                                   " segments, more than the limit of ",
                                                   limits.max_segments, " segments per request"));
  }
  PreparedRequest prepared;
  prepared.num_segments = request.segments_size();
  prepared.return_scores = request.options().return_scores();
  KVMT_ASSIGN_OR_RETURN(prepared.options, ResolveOptions(request.options()));
  if (limits.max_beam_size > 0 && prepared.options.beam_size > limits.max_beam_size) {
    return absl::InvalidArgumentError(absl::StrCat("beam_size ", prepared.options.beam_size,
                                                   " is more than the limit of ",
                                                   limits.max_beam_size));
  }
  const v1::DecodingOptions& decoding = request.options();
  const int max_input_length =
      decoding.max_input_length() > 0 ? AsInt(decoding.max_input_length()) : kDefaultMaxInputLength;
  const ModelConfig& config = model_->config;
  const int special_tokens = (config.add_source_bos ? 1 : 0) + (config.add_source_eos ? 1 : 0);
  if (max_input_length <= special_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_input_length ", max_input_length, " leaves no room for source tokens"));
  }

  // Validate and tokenise everything first: a bad segment fails the request before any work.
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
    if (limits.max_segment_bytes > 0) {
      int64_t bytes = static_cast<int64_t>(segment.text().size() + segment.target_prefix().size());
      for (const std::string& token : segment.tokens()) bytes += static_cast<int64_t>(token.size());
      for (const std::string& token : segment.target_prefix_tokens()) {
        bytes += static_cast<int64_t>(token.size());
      }
      if (bytes > limits.max_segment_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("segment ", i, " has ", bytes, " bytes, more than the limit of ",
                         limits.max_segment_bytes, " bytes per segment"));
      }
    }
    std::vector<std::string> tokens(segment.tokens().begin(), segment.tokens().end());
    for (const std::string& token : tokens) {
      KVMT_RETURN_IF_ERROR(CheckUtf8(token, index, "a token"));
    }
    if (!segment.text().empty()) {
      KVMT_RETURN_IF_ERROR(CheckUtf8(segment.text(), index, "text"));
      KVMT_ASSIGN_OR_RETURN(tokens, model_->source_tokenizer->Encode(segment.text()));
    }
    if (tokens.empty()) continue;  // Nothing to translate: an empty result.
    if (limits.max_segment_tokens > 0 &&
        tokens.size() > static_cast<size_t>(limits.max_segment_tokens)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "segment ", i, " has ", tokens.size(), " source tokens, more than the limit of ",
          limits.max_segment_tokens, " tokens per segment"));
    }

    std::vector<std::string> prefix_tokens(segment.target_prefix_tokens().begin(),
                                           segment.target_prefix_tokens().end());
    for (const std::string& token : prefix_tokens) {
      KVMT_RETURN_IF_ERROR(CheckUtf8(token, index, "a target prefix token"));
    }
    if (!segment.target_prefix().empty()) {
      KVMT_RETURN_IF_ERROR(CheckUtf8(segment.target_prefix(), index, "target_prefix"));
      KVMT_ASSIGN_OR_RETURN(prefix_tokens,
                            model_->target_tokenizer->Encode(segment.target_prefix()));
    }

    const size_t keep = static_cast<size_t>(max_input_length - special_tokens);
    if (tokens.size() > keep) tokens.resize(keep);
    KVMT_ASSIGN_OR_RETURN(
        std::vector<int32_t> source_ids,
        ToIds(tokens, model_->source_vocabulary, config.source_unk_id, index, "source"));
    KVMT_ASSIGN_OR_RETURN(
        std::vector<int32_t> prefix_ids,
        ToIds(prefix_tokens, model_->target_vocabulary, config.target_unk_id, index, "target"));

    SegmentIds ids;
    if (config.add_source_bos) ids.source.push_back(config.source_bos_id);
    ids.source.insert(ids.source.end(), source_ids.begin(), source_ids.end());
    if (config.add_source_eos) ids.source.push_back(config.source_eos_id);
    ids.target_prefix = std::move(prefix_ids);
    prepared.segments.push_back(std::move(ids));
    prepared.positions.push_back(i);
  }
  return prepared;
}

absl::StatusOr<v1::SegmentResult> Translator::MakeSegmentResult(const SearchResult& result,
                                                                bool return_scores) const {
  v1::SegmentResult segment_result;
  for (const SearchHypothesis& found : result.hypotheses) {
    v1::Hypothesis* hypothesis = segment_result.add_hypotheses();
    std::vector<std::string> words;
    for (int32_t id : found.ids) {
      hypothesis->add_tokens(model_->target_vocabulary.Token(id));
      if (id != model_->config.target_eos_id) words.push_back(model_->target_vocabulary.Token(id));
    }
    KVMT_ASSIGN_OR_RETURN(*hypothesis->mutable_text(), model_->target_tokenizer->Decode(words));
    if (return_scores) hypothesis->set_score(found.score);
  }
  // Segments with nothing to translate get one empty hypothesis, like any other result.
  if (segment_result.hypotheses().empty()) segment_result.add_hypotheses();
  return segment_result;
}

const std::string& Translator::TargetToken(int32_t id) const {
  return model_->target_vocabulary.Token(id);
}

absl::StatusOr<v1::TranslateResponse> Translator::Translate(
    const v1::TranslateRequest& request) const {
  KVMT_ASSIGN_OR_RETURN(const PreparedRequest prepared, Prepare(request));
  KVMT_ASSIGN_OR_RETURN(const std::vector<SearchResult> results,
                        TranslateIds(prepared.segments, prepared.options));
  v1::TranslateResponse response;
  for (int i = 0; i < prepared.num_segments; ++i) response.add_results()->add_hypotheses();
  for (size_t i = 0; i < results.size(); ++i) {
    KVMT_ASSIGN_OR_RETURN(*response.mutable_results(prepared.positions[i]),
                          MakeSegmentResult(results[i], prepared.return_scores));
  }
  return response;
}

}  // namespace kvmt
