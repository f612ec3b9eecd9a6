// kvmt-loadgen: keeps --concurrency calls in flight against a kvmt-server for --duration seconds
// (or --requests calls), cycling through the requests of --input (--segments-per-request lines
// each, or one JSON request per line with --jsonl), and prints requests/s, segments/s, target
// tokens/s, latency percentiles and the failed calls by status code (--json: one JSON object
// instead). Exit status 1 when the run could not happen (bad flags, unreadable input, server
// unreachable); failed calls are counted, not fatal.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tools/kebab_flags.h"
#include "tools/loadgen/load_generator.h"
#include "tools/loadgen/load_report.h"
#include "tools/loadgen/load_requests.h"

ABSL_FLAG(std::string, server, "",
          "gRPC target: HOST:PORT, dns:///NAME:PORT or unix:PATH. Required.");
ABSL_FLAG(std::string, input, "",
          "Segments, one per line (empty lines are skipped), sent round-robin. Required.");
ABSL_FLAG(bool, jsonl, false,
          "Each --input line is a kvmt.v1.TranslateRequest in JSON; its options override the "
          "flags' field by field.");
ABSL_FLAG(int32_t, concurrency, 1, "Calls in flight.");
ABSL_FLAG(double, duration, 10, "Seconds during which calls start; 0: until --requests.");
ABSL_FLAG(int64_t, requests, 0, "Most calls to make; 0: no limit.");
ABSL_FLAG(int32_t, segments_per_request, 1, "Lines per TranslateRequest (not with --jsonl).");
ABSL_FLAG(std::string, model, "", "TranslateRequest.model; empty: the server's default model.");
ABSL_FLAG(int32_t, beam_size, 0, "DecodingOptions.beam_size; 0: the model's default.");
ABSL_FLAG(int32_t, max_decoding_length, 0, "DecodingOptions.max_decoding_length; 0: 256.");
ABSL_FLAG(int32_t, min_decoding_length, 0,
          "DecodingOptions.min_decoding_length; set to --max-decoding-length, it fixes every "
          "segment's length.");
ABSL_FLAG(bool, stream, false, "Call TranslateStream instead of Translate.");
ABSL_FLAG(int64_t, deadline_ms_max, 0,
          "Above --deadline-ms: each call's deadline is drawn from [--deadline-ms, this].");
ABSL_FLAG(double, cancel_fraction, 0,
          "Share of the calls the client cancels, at a random time within --cancel-within-ms.");
ABSL_FLAG(int64_t, cancel_within_ms, 500, "Cancelled calls are cancelled this soon at the latest.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the deadline and cancellation draws.");
ABSL_FLAG(std::string, expected, "",
          "File line-aligned with --input (e.g. kvmt-translate's output): each result must have "
          "its line's text as best hypothesis, else the call counts as WRONG_TRANSLATION.");
ABSL_FLAG(int64_t, deadline_ms, 0, "Deadline of each call in milliseconds; 0: none.");
ABSL_FLAG(std::string, load_balancing, "",
          "gRPC load-balancing policy (round_robin with a dns:/// target spreads calls over "
          "every address); empty: pick_first.");
ABSL_FLAG(std::string, tls_ca, "", "PEM file of the roots to trust; set: TLS.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server's certificate must carry; empty: the target's host.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File whose content (trimmed) is sent as 'authorization: Bearer <token>'.");
ABSL_FLAG(int64_t, connect_timeout_ms, 10000, "How long to wait for the first connection.");
ABSL_FLAG(bool, json, false, "Print the report as one JSON object.");

namespace kvmt {
namespace {

constexpr char kUsage[] =
    "kvmt-loadgen --server ADDR --concurrency N --duration S --input FILE [flags]\n"
    "Measures a kvmt-server under a fixed number of calls in flight.";

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --", flag, " ", path));
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::StatusOr<uint32_t> NonNegative(absl::string_view flag, int32_t value) {
  if (value < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 0, got ", value));
  }
  return static_cast<uint32_t>(value);
}

absl::Status Run() {
  LoadOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  const double duration = absl::GetFlag(FLAGS_duration);
  if (duration < 0) return absl::InvalidArgumentError("--duration must be >= 0");
  options.duration = absl::Seconds(duration);
  options.max_requests = absl::GetFlag(FLAGS_requests);
  options.model = absl::GetFlag(FLAGS_model);
  absl::StatusOr<uint32_t> beam_size = NonNegative("beam-size", absl::GetFlag(FLAGS_beam_size));
  if (!beam_size.ok()) return beam_size.status();
  options.decoding.set_beam_size(*beam_size);
  absl::StatusOr<uint32_t> max_length =
      NonNegative("max-decoding-length", absl::GetFlag(FLAGS_max_decoding_length));
  if (!max_length.ok()) return max_length.status();
  options.decoding.set_max_decoding_length(*max_length);
  absl::StatusOr<uint32_t> min_length =
      NonNegative("min-decoding-length", absl::GetFlag(FLAGS_min_decoding_length));
  if (!min_length.ok()) return min_length.status();
  options.decoding.set_min_decoding_length(*min_length);
  options.stream = absl::GetFlag(FLAGS_stream);
  options.deadline = absl::Milliseconds(absl::GetFlag(FLAGS_deadline_ms));
  options.deadline_max = absl::Milliseconds(absl::GetFlag(FLAGS_deadline_ms_max));
  options.cancel_fraction = absl::GetFlag(FLAGS_cancel_fraction);
  options.cancel_within = absl::Milliseconds(absl::GetFlag(FLAGS_cancel_within_ms));
  options.seed = absl::GetFlag(FLAGS_seed);
  options.load_balancing = absl::GetFlag(FLAGS_load_balancing);
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.connect_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_connect_timeout_ms));
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = ReadFile("auth-token-file", path);
    if (!token.ok()) return token.status();
    options.auth_token = std::string(absl::StripAsciiWhitespace(*token));
    if (options.auth_token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token-file ", path, " is empty"));
    }
  }

  const std::string input = absl::GetFlag(FLAGS_input);
  if (input.empty()) return absl::InvalidArgumentError("--input is required");
  std::ifstream in(input);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --input ", input));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const int segments_per_request = absl::GetFlag(FLAGS_segments_per_request);
  std::vector<v1::TranslateRequest> requests;
  if (absl::GetFlag(FLAGS_jsonl)) {
    if (segments_per_request != 1) {
      return absl::InvalidArgumentError("--segments-per-request does not go with --jsonl");
    }
    absl::StatusOr<std::vector<v1::TranslateRequest>> parsed = RequestsFromJsonLines(lines);
    if (!parsed.ok()) return parsed.status();
    requests = *std::move(parsed);
  } else {
    if (segments_per_request < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--segments-per-request must be >= 1, got ", segments_per_request));
    }
    requests = RequestsFromLines(lines, segments_per_request);
  }
  if (requests.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--input ", input, " holds no request"));
  }
  if (const std::string path = absl::GetFlag(FLAGS_expected); !path.empty()) {
    if (absl::GetFlag(FLAGS_jsonl)) {
      return absl::InvalidArgumentError("--expected goes with plain --input lines, not --jsonl");
    }
    absl::StatusOr<std::string> expected = ReadFile("expected", path);
    if (!expected.ok()) return expected.status();
    std::vector<std::string> outputs = absl::StrSplit(*expected, '\n');
    if (!outputs.empty() && outputs.back().empty()) outputs.pop_back();
    if (outputs.size() != lines.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--expected ", path, " has ", outputs.size(),
                                                     " lines, --input ", lines.size()));
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto [it, inserted] = options.expected.emplace(lines[i], outputs[i]);
      if (!inserted && it->second != outputs[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--expected ", path, " gives two outputs for the input line '", lines[i], "'"));
      }
    }
  }

  absl::StatusOr<LoadReport> report = RunLoad(options, requests);
  if (!report.ok()) return report.status();
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*report).dump() << "\n";
  } else {
    std::cout << FormatText(*report);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
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
    std::cerr << "kvmt-loadgen: unexpected argument '" << positional[1] << "'\n";
    return 1;
  }
  if (const absl::Status status = kvmt::Run(); !status.ok()) {
    std::cerr << "kvmt-loadgen: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
