// kvmt-translate: translates a file (or stdin) line by line with one model.
//
// Input and output are line-aligned: exactly one output line per input line, in order, and an
// empty input line gives an empty output line without reaching the engine. A last line without
// '\n' counts; every output line ends with '\n'.
//  - Plain mode: a line is one segment's text, tokenised by the model (split on spaces and tabs
//    when it has no SentencePiece model); the output line is the hypothesis's text.
//  - --tokenized: a line is tokens separated by spaces or tabs; the output line is the
//    hypothesis's tokens joined by single spaces.
//  - --num-hypotheses N > 1 (plain and tokenized): the N hypotheses of a line share its output
//    line, best first, separated by " ||| ".
//  - --return-scores (plain and tokenized): each hypothesis is written as "<score>\t<text>".
//  - --jsonl: a line is a kvmt.v1.TranslateRequest in protobuf's JSON mapping and the output line
//    its kvmt.v1.TranslateResponse. A request's options override the flags' field by field
//    (proto3 merge: what the request leaves unset or zero keeps the flags' value).
// Lines are sent to the engine --max-batch-size segments at a time and written as each batch
// completes. A malformed line or a segment the engine rejects ends the run with exit status 1 and
// a message naming the input line(s); the output of earlier batches has been written by then.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "kvmt/v1/translation.pb.h"
#include "model/model.h"
#include "tools/kebab_flags.h"
#include "tools/peak_rss.h"
#include "tools/segment_format.h"
#include "translator/translator.h"

ABSL_FLAG(std::string, model, "",
          "Model directory: CTranslate2 (model.bin) or HuggingFace Marian. Required.");
ABSL_FLAG(std::string, input, "-",
          "Input file, one segment (or --jsonl request) per line; - is stdin.");
ABSL_FLAG(std::string, output, "-", "Output file, one line per input line; - is stdout.");
ABSL_FLAG(int32_t, beam_size, 0, "Beam size; 0: the model's default, else 4. 1 is greedy search.");
ABSL_FLAG(int32_t, num_hypotheses, 0,
          "Hypotheses per segment, at most the beam size; 0: 1. Several share the line, "
          "separated by ' ||| '.");
ABSL_FLAG(std::optional<float>, length_penalty, std::nullopt,
          "Final score = log-probability / length^length_penalty; unset: 1; 0: none.");
ABSL_FLAG(int32_t, max_decoding_length, 0,
          "Most target tokens per hypothesis (prefix and </s> included); 0: 256.");
ABSL_FLAG(int32_t, min_decoding_length, 0, "</s> is not allowed before this many target tokens.");
ABSL_FLAG(int32_t, max_input_length, 0,
          "Longer sources are truncated to this many tokens; 0: 1024.");
ABSL_FLAG(std::optional<float>, repetition_penalty, std::nullopt,
          "Penalty > 1 on tokens already generated; unset or 1: off.");
ABSL_FLAG(int32_t, no_repeat_ngram_size, 0, "Forbid repeating n-grams of this size; 0: off.");
ABSL_FLAG(int32_t, sampling_topk, 0,
          "0 or 1: argmax; > 1: sample among the k most likely tokens (needs --beam-size 1).");
ABSL_FLAG(std::optional<float>, sampling_temperature, std::nullopt,
          "Sampling temperature, > 0; unset: 1.");
ABSL_FLAG(uint64_t, seed, 0, "Random seed for sampling; 0: a fixed default.");
ABSL_FLAG(bool, return_scores, false,
          "Write each hypothesis as '<score>\\t<text>' (with --jsonl: fill Hypothesis.score).");
ABSL_FLAG(int32_t, max_batch_size, 32, "Segments per engine call.");
ABSL_FLAG(int32_t, threads, 0, "Compute threads; 0: all cores.");
ABSL_FLAG(std::string, compute_type, "auto",
          "Arithmetic of the linear layers: auto (int8 for int8 models, else float32), float32, "
          "int8 or bfloat16.");
ABSL_FLAG(bool, no_cache, false,
          "Decode without the self-attention cache (recompute the whole prefix at every step).");
ABSL_FLAG(bool, tokenized, false,
          "Input lines are space-separated tokens; output lines are the tokens joined by spaces.");
ABSL_FLAG(int64_t, cache_memory_mb, 0,
          "Budget of the K/V cache pool in MiB (decoder caches and source K/V), allocated once; "
          "0: chosen from the model and the machine.");
ABSL_FLAG(int64_t, source_cache_mb, -1,
          "Source cache (encoder results kept for repeated segments) in MiB; -1: a quarter of the "
          "pool; 0: off.");
ABSL_FLAG(bool, verbose, false, "At the end, also print the cache's accounting.");
ABSL_FLAG(bool, jsonl, false,
          "Each input line is a kvmt.v1.TranslateRequest in JSON, each output line its "
          "TranslateResponse.");

namespace kvmt {
namespace {

struct CliOptions {
  std::string model_dir;
  std::string input;
  std::string output;
  v1::DecodingOptions decoding;
  TranslatorOptions engine;
  bool tokenized = false;
  bool jsonl = false;
  bool verbose = false;
};

absl::StatusOr<uint32_t> NonNegative(absl::string_view flag, int32_t value) {
  if (value < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 0, got ", value));
  }
  return static_cast<uint32_t>(value);
}

absl::StatusOr<CliOptions> OptionsFromFlags() {
  CliOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  options.input = absl::GetFlag(FLAGS_input);
  options.output = absl::GetFlag(FLAGS_output);
  if (options.input.empty())
    return absl::InvalidArgumentError("--input is empty (use - for stdin)");
  if (options.output.empty()) {
    return absl::InvalidArgumentError("--output is empty (use - for stdout)");
  }
  options.tokenized = absl::GetFlag(FLAGS_tokenized);
  options.jsonl = absl::GetFlag(FLAGS_jsonl);
  if (options.tokenized && options.jsonl) {
    return absl::InvalidArgumentError(
        "--tokenized and --jsonl exclude each other: a JSON request says itself whether it "
        "holds text or tokens");
  }

  v1::DecodingOptions& d = options.decoding;
  KVMT_ASSIGN_OR_RETURN(const uint32_t beam_size,
                        NonNegative("beam-size", absl::GetFlag(FLAGS_beam_size)));
  d.set_beam_size(beam_size);
  KVMT_ASSIGN_OR_RETURN(const uint32_t num_hypotheses,
                        NonNegative("num-hypotheses", absl::GetFlag(FLAGS_num_hypotheses)));
  d.set_num_hypotheses(num_hypotheses);
  if (const std::optional<float> value = absl::GetFlag(FLAGS_length_penalty)) {
    d.set_length_penalty(*value);
  }
  KVMT_ASSIGN_OR_RETURN(
      const uint32_t max_decoding_length,
      NonNegative("max-decoding-length", absl::GetFlag(FLAGS_max_decoding_length)));
  d.set_max_decoding_length(max_decoding_length);
  KVMT_ASSIGN_OR_RETURN(
      const uint32_t min_decoding_length,
      NonNegative("min-decoding-length", absl::GetFlag(FLAGS_min_decoding_length)));
  d.set_min_decoding_length(min_decoding_length);
  KVMT_ASSIGN_OR_RETURN(const uint32_t max_input_length,
                        NonNegative("max-input-length", absl::GetFlag(FLAGS_max_input_length)));
  d.set_max_input_length(max_input_length);
  if (const std::optional<float> value = absl::GetFlag(FLAGS_repetition_penalty)) {
    d.set_repetition_penalty(*value);
  }
  KVMT_ASSIGN_OR_RETURN(
      const uint32_t no_repeat_ngram_size,
      NonNegative("no-repeat-ngram-size", absl::GetFlag(FLAGS_no_repeat_ngram_size)));
  d.set_no_repeat_ngram_size(no_repeat_ngram_size);
  KVMT_ASSIGN_OR_RETURN(const uint32_t sampling_topk,
                        NonNegative("sampling-topk", absl::GetFlag(FLAGS_sampling_topk)));
  d.set_sampling_topk(sampling_topk);
  if (const std::optional<float> value = absl::GetFlag(FLAGS_sampling_temperature)) {
    d.set_sampling_temperature(*value);
  }
  d.set_seed(absl::GetFlag(FLAGS_seed));
  d.set_return_scores(absl::GetFlag(FLAGS_return_scores));

  options.engine.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  if (options.engine.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch-size must be >= 1, got ", options.engine.max_batch_size));
  }
  options.engine.threads = absl::GetFlag(FLAGS_threads);
  if (options.engine.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be >= 0, got ", options.engine.threads));
  }
  const std::string compute_type = absl::GetFlag(FLAGS_compute_type);
  if (compute_type != "auto") {
    absl::StatusOr<ComputeType> parsed = ParseComputeType(compute_type);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--compute-type must be auto, float32, int8 or bfloat16, got '", compute_type, "'"));
    }
    options.engine.compute_type = *parsed;
  }
  options.engine.use_cache = !absl::GetFlag(FLAGS_no_cache);
  constexpr int64_t kMiB = int64_t{1} << 20;
  // Beyond this a budget is certainly a typo (and MiB -> bytes would overflow much later).
  constexpr int64_t kMaxCacheMb = int64_t{1} << 30;
  const int64_t cache_mb = absl::GetFlag(FLAGS_cache_memory_mb);
  if (cache_mb < 0 || cache_mb > kMaxCacheMb) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cache-memory-mb must be in [0, ", kMaxCacheMb, "], got ", cache_mb));
  }
  options.engine.cache_memory_bytes = cache_mb * kMiB;
  const int64_t source_cache_mb = absl::GetFlag(FLAGS_source_cache_mb);
  if (source_cache_mb < -1 || source_cache_mb > kMaxCacheMb) {
    return absl::InvalidArgumentError(absl::StrCat("--source-cache-mb must be -1 or in [0, ",
                                                   kMaxCacheMb, "], got ", source_cache_mb));
  }
  options.engine.source_cache_bytes = source_cache_mb < 0 ? -1 : source_cache_mb * kMiB;
  options.verbose = absl::GetFlag(FLAGS_verbose);
  return options;
}

// The name a --jsonl request may give in its `model` field: the model directory's last part.
std::string ModelName(const std::string& model_dir) {
  std::filesystem::path path(model_dir);
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

// Reads lines, sends them to the engine in batches and writes one output line per input line.
class LineTranslator {
 public:
  LineTranslator(const Translator& translator, const CliOptions& options, std::string input_name,
                 std::ostream& out)
      : translator_(translator),
        options_(options),
        input_name_(std::move(input_name)),
        model_name_(ModelName(options.model_dir)),
        out_(out) {}

  // Takes input line `number` (1-based); translates and writes when a batch is complete.
  absl::Status AddLine(int64_t number, absl::string_view line) {
    ++lines_;
    if (line.empty()) {
      if (pending_.empty()) return Write("\n");
      pending_.push_back(PendingLine{number, {}});
      return absl::OkStatus();
    }
    absl::StatusOr<v1::TranslateRequest> parsed = ParseLine(number, line);
    if (!parsed.ok()) {
      // The lines before a malformed one still get their output.
      KVMT_RETURN_IF_ERROR(Finish());
      return parsed.status();
    }
    v1::TranslateRequest request = *std::move(parsed);
    // A batch is one request, so its lines must share their decoding options.
    if (!pending_.empty() &&
        (pending_segments_ + request.segments_size() > options_.engine.max_batch_size ||
         !google::protobuf::util::MessageDifferencer::Equals(request.options(),
                                                             pending_.front().request.options()))) {
      KVMT_RETURN_IF_ERROR(TranslatePending());
    }
    pending_segments_ += request.segments_size();
    pending_.push_back(PendingLine{number, std::move(request)});
    if (pending_segments_ >= options_.engine.max_batch_size) return TranslatePending();
    return absl::OkStatus();
  }

  // Translates and writes what is left.
  absl::Status Finish() { return pending_.empty() ? absl::OkStatus() : TranslatePending(); }

  int64_t lines() const { return lines_; }

 private:
  // An input line waiting for its batch; no segments when the line was empty.
  struct PendingLine {
    int64_t number = 0;
    v1::TranslateRequest request;
  };

  std::string Where(int64_t number) const { return absl::StrCat(input_name_, " line ", number); }

  absl::StatusOr<v1::TranslateRequest> ParseLine(int64_t number, absl::string_view line) const {
    v1::TranslateRequest request;
    if (!options_.jsonl) {
      v1::Segment* segment = request.add_segments();
      if (options_.tokenized) {
        for (absl::string_view token :
             absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
          segment->add_tokens(std::string(token));
        }
      } else {
        segment->set_text(std::string(line));
      }
      *request.mutable_options() = options_.decoding;
      return request;
    }

    const auto parsed = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(line.data(), line.size()), &request);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(number),
                       ": not a kvmt.v1.TranslateRequest in JSON: ", parsed.message().ToString()));
    }
    if (request.segments().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(number), ": the request has no segments"));
    }
    if (!request.model().empty() && request.model() != model_name_ &&
        request.model() != options_.model_dir) {
      return absl::InvalidArgumentError(absl::StrCat(Where(number), ": the request's model '",
                                                     request.model(), "' is not the loaded one ('",
                                                     model_name_, "')"));
    }
    v1::DecodingOptions merged = options_.decoding;
    merged.MergeFrom(request.options());
    if (absl::StatusOr<SearchOptions> resolved = translator_.ResolveOptions(merged);
        !resolved.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(number), ": invalid options: ", resolved.status().message()));
    }
    *request.mutable_options() = std::move(merged);
    return request;
  }

  absl::Status TranslatePending() {
    v1::TranslateRequest batch;
    *batch.mutable_options() = pending_.front().request.options();
    for (const PendingLine& line : pending_) {
      for (const v1::Segment& segment : line.request.segments()) *batch.add_segments() = segment;
    }
    absl::StatusOr<v1::TranslateResponse> response = translator_.Translate(batch);
    if (!response.ok()) return LocateFailure(response.status());
    if (response->results_size() != batch.segments_size()) {
      return absl::InternalError(absl::StrCat("the engine returned ", response->results_size(),
                                              " results for ", batch.segments_size(), " segments"));
    }

    std::string text;
    int next = 0;
    for (const PendingLine& line : pending_) {
      const int count = line.request.segments_size();
      if (count > 0) {
        KVMT_ASSIGN_OR_RETURN(const std::string formatted, Format(*response, next, count));
        absl::StrAppend(&text, formatted);
      }
      absl::StrAppend(&text, "\n");
      next += count;
    }
    pending_.clear();
    pending_segments_ = 0;
    return Write(text);
  }

  // The batch failed as a whole: translate its lines one by one to name the culprits.
  absl::Status LocateFailure(const absl::Status& batch_error) const {
    const auto non_empty =
        std::count_if(pending_.begin(), pending_.end(),
                      [](const PendingLine& line) { return !line.request.segments().empty(); });
    if (non_empty == 1) {
      return absl::Status(batch_error.code(), absl::StrCat(Where(pending_.front().number), ": ",
                                                           batch_error.message()));
    }
    std::vector<std::string> failures;
    for (const PendingLine& line : pending_) {
      if (line.request.segments().empty()) continue;
      absl::StatusOr<v1::TranslateResponse> alone = translator_.Translate(line.request);
      if (!alone.ok())
        failures.push_back(absl::StrCat(Where(line.number), ": ", alone.status().message()));
    }
    if (failures.empty()) {
      return absl::Status(batch_error.code(),
                          absl::StrCat(input_name_, " lines ", pending_.front().number, "-",
                                       pending_.back().number, ": ", batch_error.message()));
    }
    return absl::Status(batch_error.code(), absl::StrJoin(failures, "\n"));
  }

  // The output line (without '\n') for results [first, first + count) of `response`.
  absl::StatusOr<std::string> Format(const v1::TranslateResponse& response, int first,
                                     int count) const {
    if (options_.jsonl) {
      v1::TranslateResponse own;
      for (int i = first; i < first + count; ++i) *own.add_results() = response.results(i);
      std::string json;
      const auto printed = google::protobuf::util::MessageToJsonString(own, &json);
      if (!printed.ok()) {
        return absl::InternalError(
            absl::StrCat("cannot print a response as JSON: ", printed.message().ToString()));
      }
      return json;
    }
    return FormatSegmentResult(response.results(first), options_.tokenized,
                               options_.decoding.return_scores());
  }

  absl::Status Write(absl::string_view text) {
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
    out_.flush();
    if (!out_) {
      return absl::UnavailableError(
          absl::StrCat("cannot write the output (", std::strerror(errno), ")"));
    }
    return absl::OkStatus();
  }

  const Translator& translator_;
  const CliOptions& options_;
  const std::string input_name_;
  const std::string model_name_;
  std::ostream& out_;
  std::vector<PendingLine> pending_;  // The first one, if any, is not empty.
  int pending_segments_ = 0;
  int64_t lines_ = 0;
};

double Mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status Run() {
  KVMT_ASSIGN_OR_RETURN(const CliOptions options, OptionsFromFlags());

  const auto load_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(options.model_dir);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("cannot load the model: ", loaded.status().message()));
  }
  std::shared_ptr<const Model> model = *std::move(loaded);
  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<Translator> translator,
                        Translator::Create(model, options.engine));
  const double load_seconds = SecondsSince(load_start);
  absl::StatusOr<SearchOptions> search = translator->ResolveOptions(options.decoding);
  if (!search.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid decoding options: ", search.status().message()));
  }

  const ModelConfig& config = model->config;
  std::cerr << absl::StrFormat(
      "kvmt-translate: model %s: %s, %d encoder + %d decoder layers, d_model %d, %d heads, "
      "ffn %d, vocabularies %d source / %d target, %s; loaded in %.2f s\n",
      options.model_dir, config.format, config.encoder_layers, config.decoder_layers,
      config.d_model, config.num_heads, config.ffn_dim, model->source_vocabulary.size(),
      model->target_vocabulary.size(),
      model->has_sentencepiece ? "SentencePiece" : "pre-tokenised (no SentencePiece)",
      load_seconds);
  const std::string threads =
      options.engine.threads > 0
          ? absl::StrCat(options.engine.threads)
          : absl::StrCat("all cores (", std::thread::hardware_concurrency(), ")");
  std::cerr << absl::StrFormat(
      "kvmt-translate: threads %s, beam size %d, hypotheses per segment %d, max batch size %d, "
      "decoder cache %s, %s input\n",
      threads, search->beam_size, search->num_hypotheses, options.engine.max_batch_size,
      options.engine.use_cache ? "on" : "off",
      options.jsonl       ? "JSON lines"
      : options.tokenized ? "tokenized"
                          : "text");
  const ComputeTypeChoice& compute = translator->compute_type();
  std::cerr << absl::StrFormat("kvmt-translate: compute type %s%s\n", ComputeTypeName(compute.type),
                               compute.note.empty() ? "" : absl::StrCat(" (", compute.note, ")"));
  const CacheStats cache = translator->cache_stats();
  std::cerr << absl::StrFormat(
      "kvmt-translate: K/V cache pool %.1f MiB (%s): %d blocks of %.1f KiB; source cache %s\n",
      Mib(cache.pool.total_blocks * cache.pool.block_bytes),
      options.engine.cache_memory_bytes > 0 ? "--cache-memory-mb" : "default for this model",
      cache.pool.total_blocks, static_cast<double>(cache.pool.block_bytes) / 1024.0,
      cache.source_cache.max_bytes > 0
          ? absl::StrFormat("up to %.1f MiB", Mib(cache.source_cache.max_bytes))
          : std::string("off"));

  std::ifstream input_file;
  if (options.input != "-") {
    input_file.open(options.input, std::ios::binary);
    if (!input_file) {
      return absl::NotFoundError(
          absl::StrCat("cannot open the input file '", options.input, "': ", std::strerror(errno)));
    }
  }
  std::ofstream output_file;
  if (options.output != "-") {
    output_file.open(options.output, std::ios::binary | std::ios::trunc);
    if (!output_file) {
      return absl::PermissionDeniedError(absl::StrCat("cannot open the output file '",
                                                      options.output, "': ", std::strerror(errno)));
    }
  }
  std::istream& in = options.input == "-" ? std::cin : input_file;
  std::ostream& out = options.output == "-" ? std::cout : output_file;

  const auto start = std::chrono::steady_clock::now();
  LineTranslator lines(*translator, options, options.input == "-" ? "<stdin>" : options.input, out);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    KVMT_RETURN_IF_ERROR(lines.AddLine(number, line));
  }
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read the input after line ", lines.lines(),
                                            ": ", std::strerror(errno)));
  }
  KVMT_RETURN_IF_ERROR(lines.Finish());
  const double seconds = SecondsSince(start);

  const TranslationStats stats = translator->stats();
  std::cerr << absl::StrFormat(
      "kvmt-translate: %d lines, %d segments, %d source tokens, %d target tokens in %.3f s "
      "(%.1f target tokens/s), peak RSS %.1f MiB\n",
      lines.lines(), stats.segments, stats.source_tokens, stats.target_tokens, seconds,
      seconds > 0 ? static_cast<double>(stats.target_tokens) / seconds : 0.0, Mib(PeakRssBytes()));
  if (options.verbose) {
    const CacheStats end = translator->cache_stats();
    std::cerr << absl::StrFormat(
        "kvmt-translate: cache: %.1f MiB in use, peak %.1f MiB; blocks %d used, %d free, %d "
        "total; source cache %d entries, %.1f MiB, %d hits, %d misses (hit rate %.1f%%)\n",
        Mib(end.pool.bytes_in_use()), Mib(end.pool.peak_bytes()), end.pool.used_blocks,
        end.pool.total_blocks - end.pool.used_blocks, end.pool.total_blocks,
        end.source_cache.entries, Mib(end.source_cache.bytes), end.source_cache.hits,
        end.source_cache.misses, 100.0 * end.source_cache.hit_rate());
  }
  return absl::OkStatus();
}

constexpr char kUsage[] =
    "kvmt-translate --model DIR [--input FILE|-] [--output FILE|-] [flags]\n"
    "Translates one segment per line (or, with --jsonl, one kvmt.v1.TranslateRequest per line);\n"
    "writes exactly one output line per input line, in order. Empty lines stay empty.\n"
    "Several hypotheses of a line share its output line, separated by ' ||| '.";

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  absl::SetProgramUsageMessage(kvmt::kUsage);
  std::vector<std::string> args = kvmt::KebabToSnakeArgs(argc, argv);
  if (kvmt::AsksForHelp(args)) {
    std::cout << kvmt::KebabUsage(__FILE__);
    return 0;
  }
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), arg_pointers.data());
  if (positional.size() > 1) {
    std::cerr << "kvmt-translate: unexpected argument '" << positional[1]
              << "' (the input is given with --input)\n";
    return 1;
  }
  const absl::Status status = kvmt::Run();
  if (!status.ok()) {
    for (absl::string_view message_line : absl::StrSplit(status.message(), '\n')) {
      std::cerr << "kvmt-translate: " << message_line << "\n";
    }
    return 1;
  }
  return 0;
}
