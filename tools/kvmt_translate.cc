// kvmt-translate: translates a file (or stdin) line by line with one model.
//
// Input and output are line-aligned: exactly one output line per input line, in order, and an
// empty input line gives an empty output line without reaching the engine. A last line without
// '\n' counts; every output line ends with '\n'. The line formats (plain, --tokenized, --column
// TSV, --jsonl) are in tools/translate/*_format.h; the pipeline (windows sorted by length,
// batches, in-order output, resume, bad lines, progress) in tools/translate/file_translator.h.
// This file reads the flags, loads the model, and prints the start-up lines and the summary.
// Exit status: 0 done; 1 stopped by an error (the output so far stays in FILE.partial);
// 2 done, with bad lines written as empty lines (--on-error=skip).
#include <unistd.h>

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
#include "core/compute_type.h"
#include "core/status_macros.h"
#include "kvmt/v1/translation.pb.h"
#include "model/model.h"
#include "tools/kebab_flags.h"
#include "tools/peak_rss.h"
#include "tools/translate/file_translator.h"
#include "tools/translate/jsonl_format.h"
#include "tools/translate/line_reader.h"
#include "tools/translate/local_backend.h"
#include "tools/translate/ordered_writer.h"
#include "tools/translate/output_file.h"
#include "tools/translate/plain_format.h"
#include "tools/translate/progress.h"
#include "tools/translate/remote_backend.h"
#include "tools/translate/tsv_format.h"
#include "translator/translator.h"

ABSL_FLAG(std::string, model, "",
          "Model directory: CTranslate2 (model.bin) or HuggingFace Marian. Required, except with "
          "--server, where it names a served model.");
ABSL_FLAG(std::string, input, "-",
          "Input file, one segment (or --jsonl request, or --column TSV row) per line; - is "
          "stdin.");
ABSL_FLAG(std::string, output, "-",
          "Output file, one line per input line, written as FILE.partial and renamed at the end; "
          "- is stdout.");
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
ABSL_FLAG(int32_t, max_batch_size, 32, "Most segments per batch.");
ABSL_FLAG(int64_t, max_batch_tokens, 8192,
          "Most padded source tokens per batch (segments x the longest one's tokens); a longer "
          "segment goes alone; 0: no limit.");
ABSL_FLAG(int32_t, sort_window, 4096,
          "Input lines read at a time, sorted by length and cut into batches; 1: no sorting.");
ABSL_FLAG(int64_t, max_line_bytes, int64_t{1} << 20,
          "A longer input line is a bad line (see --on-error); 0: no limit.");
ABSL_FLAG(std::string, on_error, "fail",
          "What a bad line (over --max-line-bytes, not UTF-8, malformed, rejected by the engine) "
          "does: 'fail' stops after writing every line before it; 'skip' writes an empty line, "
          "names it on stderr and exits with status 2 at the end.");
ABSL_FLAG(bool, resume, false,
          "Continue an interrupted run: keep the complete lines of --output's FILE.partial and "
          "translate from the next input line on.");
ABSL_FLAG(int32_t, column, 0,
          "TSV input: translate tab-separated column N (1-based) and keep the others; 0: the "
          "whole line.");
ABSL_FLAG(std::string, server, "",
          "Translate through the kvmt-server at HOST:PORT instead of loading the model; --model "
          "is then the served model's name (empty: the server's default).");
ABSL_FLAG(std::string, tls_ca, "", "With --server: PEM root certificates; connect with TLS.");
ABSL_FLAG(std::string, auth_token_file, "",
          "With --server: file holding the bearer token to send.");
ABSL_FLAG(double, timeout_seconds, 0, "With --server: deadline of each batch's call; 0: none.");
ABSL_FLAG(double, retry_seconds, 60,
          "With --server: how long to retry a batch the server refuses for now (UNAVAILABLE, "
          "queue full) before stopping; 0: stop at once.");
ABSL_FLAG(bool, progress, false, "Show the progress bar on stderr even when it is not a terminal.");
ABSL_FLAG(bool, quiet, false,
          "No progress bar, no start-up lines and no summary on stderr; errors only.");
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

constexpr int kExitBadLines = 2;

struct CliOptions {
  std::string model_dir;
  std::string input;
  std::string output;
  v1::DecodingOptions decoding;
  TranslatorOptions engine;
  bool tokenized = false;
  bool jsonl = false;
  int column = 0;
  bool verbose = false;
  bool resume = false;
  OnError on_error = OnError::kFail;
  bool quiet = false;
  bool progress = false;
  int64_t max_batch_tokens = 0;
  int sort_window = 1;
  int64_t max_line_bytes = 0;
  RemoteOptions remote;  // address empty: translate in this process.
};

absl::StatusOr<uint32_t> NonNegative(absl::string_view flag, int32_t value) {
  if (value < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 0, got ", value));
  }
  return static_cast<uint32_t>(value);
}

// With --server: where and how to connect. The engine's own settings are the server's then.
absl::Status RemoteOptionsFromFlags(CliOptions& options) {
  RemoteOptions& remote = options.remote;
  remote.model = options.model_dir;
  remote.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  remote.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  const double timeout = absl::GetFlag(FLAGS_timeout_seconds);
  if (timeout < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout-seconds must be >= 0, got ", timeout));
  }
  remote.timeout = absl::Seconds(timeout);
  const double retry = absl::GetFlag(FLAGS_retry_seconds);
  if (retry < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--retry-seconds must be >= 0, got ", retry));
  }
  remote.retry_for = absl::Seconds(retry);
  const std::pair<const char*, bool> engine_flags[] = {
      {"--threads", options.engine.threads != 0},
      {"--cache-memory-mb", options.engine.cache_memory_bytes != 0},
      {"--source-cache-mb", options.engine.source_cache_bytes != -1},
      {"--no-cache", !options.engine.use_cache},
      {"--compute-type", options.engine.compute_type.has_value()},
      {"--verbose", options.verbose}};
  for (const auto& [flag, set] : engine_flags) {
    if (set) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " has no effect with --server: the server's own flags decide"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CliOptions> OptionsFromFlags() {
  CliOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.remote.address = absl::GetFlag(FLAGS_server);
  if (options.model_dir.empty() && options.remote.address.empty()) {
    return absl::InvalidArgumentError("--model is required (or --server)");
  }
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
  options.column = absl::GetFlag(FLAGS_column);
  if (options.column < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--column must be >= 0, got ", options.column));
  }
  if (options.column > 0 && options.jsonl) {
    return absl::InvalidArgumentError("--column (TSV input) and --jsonl exclude each other");
  }
  options.resume = absl::GetFlag(FLAGS_resume);
  if (options.resume && options.output == "-") {
    return absl::InvalidArgumentError("--resume needs --output FILE (it continues FILE.partial)");
  }
  const std::string on_error = absl::GetFlag(FLAGS_on_error);
  if (on_error == "fail") {
    options.on_error = OnError::kFail;
  } else if (on_error == "skip") {
    options.on_error = OnError::kSkip;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--on-error must be 'fail' or 'skip', got '", on_error, "'"));
  }
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.progress = absl::GetFlag(FLAGS_progress);
  if (options.quiet && options.progress) {
    return absl::InvalidArgumentError("--quiet and --progress exclude each other");
  }
  options.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  if (options.max_batch_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch-tokens must be >= 0, got ", options.max_batch_tokens));
  }
  options.sort_window = absl::GetFlag(FLAGS_sort_window);
  if (options.sort_window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sort-window must be >= 1, got ", options.sort_window));
  }
  options.max_line_bytes = absl::GetFlag(FLAGS_max_line_bytes);
  if (options.max_line_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-line-bytes must be >= 0, got ", options.max_line_bytes));
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
  if (!options.remote.address.empty()) {
    KVMT_RETURN_IF_ERROR(RemoteOptionsFromFlags(options));
  } else if (!absl::GetFlag(FLAGS_tls_ca).empty() ||
             !absl::GetFlag(FLAGS_auth_token_file).empty() ||
             absl::GetFlag(FLAGS_timeout_seconds) != 0) {
    return absl::InvalidArgumentError(
        "--tls-ca, --auth-token-file and --timeout-seconds need --server");
  }
  return options;
}

// The name a --jsonl request may give in its `model` field: the model directory's last part.
std::string ModelName(const std::string& model_dir) {
  std::filesystem::path path(model_dir);
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

// `model_names`: what a --jsonl request's `model` field may say.
std::unique_ptr<LineFormat> MakeFormat(const CliOptions& options,
                                       std::vector<std::string> model_names) {
  if (options.jsonl) return std::make_unique<JsonlFormat>(options.decoding, std::move(model_names));
  if (options.column > 0) {
    return std::make_unique<TsvFormat>(options.decoding, options.tokenized, options.column);
  }
  return std::make_unique<PlainFormat>(options.decoding, options.tokenized);
}

double Mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The batching and decoding settings of the start-up lines.
std::string Settings(const CliOptions& options, int beam_size, int num_hypotheses) {
  const std::string input_kind = options.jsonl        ? "JSON lines"
                                 : options.column > 0 ? absl::StrCat("TSV column ", options.column)
                                 : options.tokenized  ? "tokenized"
                                                      : "text";
  return absl::StrFormat(
      "beam size %d, hypotheses per segment %d, max batch size %d, max batch tokens %s, sort "
      "window %d lines, %s input%s",
      beam_size, num_hypotheses, options.engine.max_batch_size,
      options.max_batch_tokens > 0 ? absl::StrCat(options.max_batch_tokens) : "unlimited",
      options.sort_window,
      options.tokenized && options.column > 0 ? absl::StrCat(input_kind, " tokenized") : input_kind,
      options.on_error == OnError::kSkip ? ", bad lines skipped" : "");
}

void PrintStartup(const CliOptions& options, const Model& model, const Translator& translator,
                  const SearchOptions& search, double load_seconds) {
  const ModelConfig& config = model.config;
  std::cerr << absl::StrFormat(
      "kvmt-translate: model %s: %s, %d encoder + %d decoder layers, d_model %d, %d heads, "
      "ffn %d, vocabularies %d source / %d target, %s; loaded in %.2f s\n",
      options.model_dir, config.format, config.encoder_layers, config.decoder_layers,
      config.d_model, config.num_heads, config.ffn_dim, model.source_vocabulary.size(),
      model.target_vocabulary.size(),
      model.has_sentencepiece ? "SentencePiece" : "pre-tokenised (no SentencePiece)", load_seconds);
  const std::string threads =
      options.engine.threads > 0
          ? absl::StrCat(options.engine.threads)
          : absl::StrCat("all cores (", std::thread::hardware_concurrency(), ")");
  std::cerr << absl::StrFormat("kvmt-translate: threads %s, %s, decoder cache %s\n", threads,
                               Settings(options, search.beam_size, search.num_hypotheses),
                               options.engine.use_cache ? "on" : "off");
  const ComputeTypeChoice& compute = translator.compute_type();
  std::cerr << absl::StrFormat("kvmt-translate: compute type %s%s\n", ComputeTypeName(compute.type),
                               compute.note.empty() ? "" : absl::StrCat(" (", compute.note, ")"));
  const CacheStats cache = translator.cache_stats();
  std::cerr << absl::StrFormat(
      "kvmt-translate: K/V cache pool %.1f MiB (%s): %d blocks of %.1f KiB; source cache %s\n",
      Mib(cache.pool.total_blocks * cache.pool.block_bytes),
      options.engine.cache_memory_bytes > 0 ? "--cache-memory-mb" : "default for this model",
      cache.pool.total_blocks, static_cast<double>(cache.pool.block_bytes) / 1024.0,
      cache.source_cache.max_bytes > 0
          ? absl::StrFormat("up to %.1f MiB", Mib(cache.source_cache.max_bytes))
          : std::string("off"));
}

absl::StatusOr<std::unique_ptr<OutputFile>> OpenOutput(const CliOptions& options) {
  if (options.output == "-") return OutputFile::Stdout();
  if (!options.resume) return OutputFile::Create(options.output);
  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> output, OutputFile::Resume(options.output));
  if (!options.quiet) {
    std::cerr << absl::StrFormat(
        "kvmt-translate: resuming %s after its %d complete lines%s\n", output->name(),
        output->resumed_lines(),
        output->dropped_bytes() > 0
            ? absl::StrFormat(" (cut off %d bytes of a torn last line)", output->dropped_bytes())
            : "");
  }
  return output;
}

// Where the batches go: the model loaded in this process, or a kvmt-server.
struct Backend {
  std::unique_ptr<Translator> translator;  // Null with --server.
  std::unique_ptr<TranslationBackend> backend;
  std::vector<std::string> model_names;  // What a --jsonl request's `model` may say.
};

absl::StatusOr<Backend> StartLocal(const CliOptions& options) {
  const auto load_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(options.model_dir);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("cannot load the model: ", loaded.status().message()));
  }
  std::shared_ptr<const Model> model = *std::move(loaded);
  Backend backend;
  KVMT_ASSIGN_OR_RETURN(backend.translator, Translator::Create(model, options.engine));
  const double load_seconds = SecondsSince(load_start);
  absl::StatusOr<SearchOptions> search = backend.translator->ResolveOptions(options.decoding);
  if (!search.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid decoding options: ", search.status().message()));
  }
  if (!options.quiet) PrintStartup(options, *model, *backend.translator, *search, load_seconds);
  backend.backend = std::make_unique<LocalBackend>(*backend.translator);
  backend.model_names = {ModelName(options.model_dir), options.model_dir};
  return backend;
}

absl::StatusOr<Backend> StartRemote(const CliOptions& options) {
  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<RemoteBackend> remote,
                        RemoteBackend::Connect(options.remote));
  KVMT_ASSIGN_OR_RETURN(const v1::ModelInfo model, remote->Model());
  if (!options.quiet) {
    std::cerr << absl::StrFormat(
        "kvmt-translate: server %s, model %s: %s, %d encoder + %d decoder layers, d_model %d, "
        "%d heads, vocabularies %d source / %d target, %s\n",
        options.remote.address, model.name(), model.format(), model.encoder_layers(),
        model.decoder_layers(), model.d_model(), model.num_heads(), model.source_vocabulary_size(),
        model.target_vocabulary_size(),
        model.sentencepiece() ? "SentencePiece" : "pre-tokenised (no SentencePiece)");
    const uint32_t beam_size =
        options.decoding.beam_size() > 0 ? options.decoding.beam_size() : model.default_beam_size();
    std::cerr << absl::StrFormat(
        "kvmt-translate: %s\n",
        Settings(options, static_cast<int>(beam_size),
                 static_cast<int>(std::max(1u, options.decoding.num_hypotheses()))));
  }
  Backend backend;
  backend.model_names = {model.name()};
  backend.backend = std::move(remote);
  return backend;
}

// Runs the whole translation; the exit status, or the error that stopped it.
absl::StatusOr<int> Run() {
  KVMT_ASSIGN_OR_RETURN(const CliOptions options, OptionsFromFlags());
  KVMT_ASSIGN_OR_RETURN(
      Backend backend, options.remote.address.empty() ? StartLocal(options) : StartRemote(options));

  std::ifstream input_file;
  if (options.input != "-") {
    input_file.open(options.input, std::ios::binary);
    if (!input_file) {
      return absl::NotFoundError(
          absl::StrCat("cannot open the input file '", options.input, "': ", std::strerror(errno)));
    }
  }
  std::istream& in = options.input == "-" ? std::cin : input_file;
  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> output, OpenOutput(options));

  LineReader reader(in, options.max_line_bytes);
  if (output->resumed_lines() > 0) {
    KVMT_ASSIGN_OR_RETURN(const int64_t skipped, reader.Skip(output->resumed_lines()));
    if (skipped < output->resumed_lines()) {
      return absl::FailedPreconditionError(absl::StrCat(
          output->name(), " has ", output->resumed_lines(), " lines but the input only ", skipped,
          ": it is not the output of this input"));
    }
  }

  const bool show_bar = options.progress || (!options.quiet && isatty(STDERR_FILENO) == 1);
  FileTranslatorOptions pipeline;
  pipeline.input_name = options.input == "-" ? "<stdin>" : options.input;
  pipeline.window_lines = options.sort_window;
  pipeline.batch.max_segments = options.engine.max_batch_size;
  pipeline.batch.max_tokens = options.max_batch_tokens;
  pipeline.max_line_bytes = options.max_line_bytes;
  pipeline.on_error = options.on_error;
  if (show_bar && options.input != "-") {
    // A second pass over the file, only for the bar: fast next to translating it.
    absl::StatusOr<int64_t> total = CountLines(options.input);
    if (total.ok()) pipeline.total_lines = *total;
  }

  const std::unique_ptr<LineFormat> format = MakeFormat(options, backend.model_names);
  Progress progress(std::cerr, show_bar);
  FileTranslator file_translator(pipeline, *format, *backend.backend, progress);
  OrderedWriter writer(*output, output->resumed_lines() + 1);
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = file_translator.Run(reader, writer);
  progress.Finish();
  if (!status.ok()) {
    const int64_t written = writer.next_line() - 1;
    if (!output->is_file()) return status;
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(), "\nthe ", written, " lines translated before it are in ",
                     output->name(), "; run again with --resume to continue after them"));
  }
  KVMT_RETURN_IF_ERROR(output->Commit());
  const double seconds = SecondsSince(start);

  const FileTranslationStats& stats = file_translator.stats();
  if (!options.quiet) {
    std::cerr << absl::StrFormat(
        "kvmt-translate: %d lines, %d segments, %d source tokens, %d target tokens in %.3f s "
        "(%.1f target tokens/s), peak RSS %.1f MiB, %d bad lines\n",
        stats.lines, stats.segments, stats.source_tokens, stats.target_tokens, seconds,
        seconds > 0 ? static_cast<double>(stats.target_tokens) / seconds : 0.0, Mib(PeakRssBytes()),
        stats.bad_lines);
  }
  if (options.verbose && backend.translator != nullptr) {
    const CacheStats end = backend.translator->cache_stats();
    std::cerr << absl::StrFormat(
        "kvmt-translate: cache: %.1f MiB in use, peak %.1f MiB; blocks %d used, %d free, %d "
        "total; source cache %d entries, %.1f MiB, %d hits, %d misses (hit rate %.1f%%)\n",
        Mib(end.pool.bytes_in_use()), Mib(end.pool.peak_bytes()), end.pool.used_blocks,
        end.pool.total_blocks - end.pool.used_blocks, end.pool.total_blocks,
        end.source_cache.entries, Mib(end.source_cache.bytes), end.source_cache.hits,
        end.source_cache.misses, 100.0 * end.source_cache.hit_rate());
  }
  if (stats.bad_lines > 0) {
    std::cerr << absl::StrFormat(
        "kvmt-translate: %d bad lines written as empty lines: %s%s\n", stats.bad_lines,
        absl::StrJoin(stats.listed_bad_lines, ", "),
        stats.bad_lines > static_cast<int64_t>(stats.listed_bad_lines.size()) ? ", ..." : "");
    return kExitBadLines;
  }
  return 0;
}

constexpr char kUsage[] =
    "kvmt-translate --model DIR [--input FILE|-] [--output FILE|-] [flags]\n"
    "Translates one segment per line (or, with --jsonl, one kvmt.v1.TranslateRequest per line;\n"
    "with --column N, column N of a TSV row); writes exactly one output line per input line, in\n"
    "order. Empty lines stay empty. Several hypotheses of a line share its output line,\n"
    "separated by ' ||| '. Exit status: 0 done, 1 stopped by an error, 2 done with bad lines\n"
    "written as empty lines (--on-error=skip).";

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
  const absl::StatusOr<int> exit_status = kvmt::Run();
  if (!exit_status.ok()) {
    for (absl::string_view message_line : absl::StrSplit(exit_status.status().message(), '\n')) {
      std::cerr << "kvmt-translate: " << message_line << "\n";
    }
    return 1;
  }
  return *exit_status;
}
