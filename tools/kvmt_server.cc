// kvmt-server: serves kvmt.v1.Translator over gRPC for one or more models, with the standard
// health service, server reflection and, on request, TLS, a bearer token and a Prometheus
// endpoint. SIGTERM or SIGINT drains it: NOT_SERVING, no new calls, calls in flight get
// --shutdown-grace-seconds to finish; then it exits with status 0.
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/compute_type.h"
#include "core/status_macros.h"
#include "service/log.h"
#include "service/server.h"
#include "tools/kebab_flags.h"

// --model is read before absl sees the command line, because it may be repeated; it is defined
// here so that --help lists it.
ABSL_FLAG(std::string, model, "",
          "A model to serve: DIR (named after its last part) or NAME=DIR; repeat it to serve "
          "several. The first one is the default. Required.");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC address, HOST:PORT; port 0: any free one.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Address of the Prometheus endpoint (GET /metrics), HOST:PORT; empty: none.");
ABSL_FLAG(int32_t, threads, 0, "Compute threads per model; 0: all cores.");
ABSL_FLAG(std::string, compute_type, "auto",
          "Arithmetic of the linear layers: auto (int8 for int8 models, else float32), float32, "
          "int8 or bfloat16 (falls back to float32 on CPUs without support).");
ABSL_FLAG(int32_t, max_batch_size, 32, "Segments a model decodes together.");
ABSL_FLAG(bool, one_request_at_a_time, false,
          "Decode one request at a time (its segments together) instead of continuous batching: "
          "the baseline to measure continuous batching against.");
ABSL_FLAG(int32_t, max_queued_segments, 1024,
          "Segments waiting for a place in the batch, per model; more: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, max_segments_per_request, 256, "Segments per request; more: INVALID_ARGUMENT.");
ABSL_FLAG(int64_t, max_segment_bytes, 16384,
          "Bytes of text (or tokens) per segment; more: INVALID_ARGUMENT.");
ABSL_FLAG(int32_t, max_segment_tokens, 1024,
          "Source tokens per segment after tokenisation; more: INVALID_ARGUMENT.");
ABSL_FLAG(int32_t, max_beam_size, 16, "Largest beam_size a request may ask for.");
ABSL_FLAG(int32_t, max_request_bytes, 4 << 20, "Largest request message gRPC accepts.");
ABSL_FLAG(double, default_deadline_seconds, 300,
          "Deadline of calls that set none; 0: none (a call may then run for ever).");
ABSL_FLAG(int64_t, cache_memory_mb, 0,
          "K/V cache pool per model, MiB; 0: room for two full batches, at most a quarter of RAM.");
ABSL_FLAG(
    int64_t, source_cache_mb, -1,
    "Encoder results kept across requests, MiB per model; -1: a quarter of the pool; 0: off.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain; with --tls-key: serve TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token that Translator calls must send "
          "('authorization: Bearer <token>'); empty: no authentication.");
ABSL_FLAG(double, shutdown_grace_seconds, 20,
          "On SIGTERM, how long calls in flight may take to finish before they are cancelled.");

namespace kvmt {
namespace {

// Removes every "--model X" / "--model=X" from `args` and returns the values in order.
absl::StatusOr<std::vector<std::string>> TakeModelFlags(std::vector<std::string>& args) {
  std::vector<std::string> values;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (absl::StartsWith(args[i], "--model=")) {
      values.push_back(args[i].substr(8));
    } else if (args[i] == "--model") {
      if (i + 1 == args.size()) return absl::InvalidArgumentError("--model needs a value");
      values.push_back(args[++i]);
    } else {
      rest.push_back(args[i]);
    }
  }
  args = std::move(rest);
  return values;
}

absl::Duration Seconds(double seconds) { return absl::Microseconds(seconds * 1e6); }

absl::StatusOr<ServerOptions> OptionsFromFlags(const std::vector<std::string>& model_flags) {
  ServerOptions options;
  if (model_flags.empty()) return absl::InvalidArgumentError("--model is required");
  for (const std::string& flag : model_flags) {
    KVMT_ASSIGN_OR_RETURN(ModelSpec spec, ModelRegistry::ParseSpec(flag));
    options.models.push_back(std::move(spec));
  }
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.engine.threads = absl::GetFlag(FLAGS_threads);
  options.engine.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  if (const std::string compute_type = absl::GetFlag(FLAGS_compute_type); compute_type != "auto") {
    absl::StatusOr<ComputeType> parsed = ParseComputeType(compute_type);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--compute-type must be auto, float32, int8 or bfloat16, got '", compute_type, "'"));
    }
    options.engine.compute_type = *parsed;
  }
  // Beyond this a budget is certainly a typo (and MiB -> bytes would overflow much later).
  constexpr int64_t kMaxCacheMb = int64_t{1} << 30;
  const int64_t cache_mb = absl::GetFlag(FLAGS_cache_memory_mb);
  if (cache_mb < 0 || cache_mb > kMaxCacheMb) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cache-memory-mb must be in [0, ", kMaxCacheMb, "], got ", cache_mb));
  }
  options.engine.cache_memory_bytes = cache_mb << 20;
  const int64_t source_cache_mb = absl::GetFlag(FLAGS_source_cache_mb);
  if (source_cache_mb < -1 || source_cache_mb > kMaxCacheMb) {
    return absl::InvalidArgumentError(absl::StrCat("--source-cache-mb must be -1 or in [0, ",
                                                   kMaxCacheMb, "], got ", source_cache_mb));
  }
  options.engine.source_cache_bytes = source_cache_mb < 0 ? -1 : source_cache_mb << 20;
  options.scheduling.max_batch_size = options.engine.max_batch_size;
  options.scheduling.max_queued_segments = absl::GetFlag(FLAGS_max_queued_segments);
  options.scheduling.one_request_at_a_time = absl::GetFlag(FLAGS_one_request_at_a_time);
  RequestLimits& limits = options.scheduling.limits;
  limits.max_segments = absl::GetFlag(FLAGS_max_segments_per_request);
  limits.max_segment_bytes = absl::GetFlag(FLAGS_max_segment_bytes);
  limits.max_segment_tokens = absl::GetFlag(FLAGS_max_segment_tokens);
  limits.max_beam_size = absl::GetFlag(FLAGS_max_beam_size);
  for (const auto& [flag, value] :
       {std::pair<const char*, int64_t>{"threads", options.engine.threads},
        {"max-segments-per-request", limits.max_segments},
        {"max-segment-bytes", limits.max_segment_bytes},
        {"max-segment-tokens", limits.max_segment_tokens},
        {"max-beam-size", limits.max_beam_size}}) {
    if (value < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 0, got ", value));
    }
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, int64_t>{"max-batch-size", options.engine.max_batch_size},
        {"max-queued-segments", options.scheduling.max_queued_segments},
        {"max-request-bytes", absl::GetFlag(FLAGS_max_request_bytes)}}) {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 1, got ", value));
    }
  }
  options.max_message_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  const double deadline = absl::GetFlag(FLAGS_default_deadline_seconds);
  if (deadline < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--default-deadline-seconds must be >= 0, got ", deadline));
  }
  options.default_deadline = Seconds(deadline);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  return options;
}

absl::Status Run(const std::vector<std::string>& model_flags) {
  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  KVMT_ASSIGN_OR_RETURN(const ServerOptions options, OptionsFromFlags(model_flags));
  const double grace_seconds = absl::GetFlag(FLAGS_shutdown_grace_seconds);
  if (grace_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shutdown-grace-seconds must be >= 0, got ", grace_seconds));
  }
  LogInfo(absl::StrCat(
      "kvmt-server starting: ", options.models.size(), " model(s), ",
      options.scheduling.one_request_at_a_time ? "one request at a time" : "continuous batching",
      ", max batch ", options.scheduling.max_batch_size, " segments, queue ",
      options.scheduling.max_queued_segments, " segments"));
  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<Server> server, Server::Start(options));

  int received = 0;
  sigwait(&signals, &received);
  LogInfo(absl::StrCat("received ", received == SIGTERM ? "SIGTERM" : "SIGINT"));
  server->Shutdown(Seconds(grace_seconds));
  return absl::OkStatus();
}

constexpr char kUsage[] =
    "kvmt-server --model DIR [--model NAME=DIR ...] [--listen HOST:PORT] [flags]\n"
    "Serves kvmt.v1.Translator (Translate, TranslateStream, ListModels) over gRPC, with\n"
    "grpc.health.v1.Health and server reflection. SIGTERM drains it and exits 0.";

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kvmt::kUsage);
  std::vector<std::string> args = kvmt::KebabToSnakeArgs(argc, argv);
  if (kvmt::AsksForHelp(args)) {
    std::cout << kvmt::KebabUsage(__FILE__);
    return 0;
  }
  absl::StatusOr<std::vector<std::string>> models = kvmt::TakeModelFlags(args);
  if (!models.ok()) {
    std::cerr << "kvmt-server: " << models.status().message() << "\n";
    return 1;
  }
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), arg_pointers.data());
  if (positional.size() > 1) {
    std::cerr << "kvmt-server: unexpected argument '" << positional[1] << "'\n";
    return 1;
  }
  const absl::Status status = kvmt::Run(*models);
  if (!status.ok()) {
    kvmt::LogError(status.message());
    return 1;
  }
  return 0;
}
