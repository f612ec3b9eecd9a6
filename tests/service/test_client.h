// gRPC and HTTP helpers for the server tests: channels, calls that collect everything a call
// returns, the metrics endpoint, and the in-process Translator the results are compared with.
#pragma once

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "kvmt/v1/translation.grpc.pb.h"
#include "tests/service/server_process.h"
#include "translator/translator.h"

namespace kvmt::testing {

inline constexpr char kModelDir[] = KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";

inline std::shared_ptr<grpc::Channel> Channel(const ServerProcess& server) {
  return grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
}

struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;
  std::string authorization;  // The metadata value; empty: none.
};

inline void Configure(grpc::ClientContext& context, const CallOptions& options) {
  if (options.timeout) context.set_deadline(std::chrono::system_clock::now() + *options.timeout);
  if (!options.authorization.empty()) context.AddMetadata("authorization", options.authorization);
}

struct UnaryResult {
  grpc::Status status;
  v1::TranslateResponse response;
};

inline UnaryResult Translate(const std::shared_ptr<grpc::Channel>& channel,
                             const v1::TranslateRequest& request, const CallOptions& options = {}) {
  grpc::ClientContext context;
  Configure(context, options);
  UnaryResult result;
  result.status = v1::Translator::NewStub(channel)->Translate(&context, request, &result.response);
  return result;
}

// Everything a TranslateStream call sent, put back together: a response with one result per
// segment, and the streamed tokens of each segment.
struct StreamResult {
  grpc::Status status;
  v1::TranslateResponse response;
  std::map<int, std::vector<std::string>> tokens;
  int messages = 0;
  bool tokens_after_result = false;  // A segment got a token after its result: a broken stream.
  bool result_twice = false;
};

inline StreamResult TranslateStream(const std::shared_ptr<grpc::Channel>& channel,
                                    const v1::TranslateRequest& request,
                                    const CallOptions& options = {}) {
  grpc::ClientContext context;
  Configure(context, options);
  StreamResult result;
  for (int i = 0; i < request.segments_size(); ++i) result.response.add_results();
  std::vector<bool> done(request.segments_size(), false);
  auto reader = v1::Translator::NewStub(channel)->TranslateStream(&context, request);
  v1::TranslateStreamResponse message;
  while (reader->Read(&message)) {
    ++result.messages;
    for (const v1::TokenEvent& token : message.tokens()) {
      const int segment = static_cast<int>(token.segment_index());
      if (done.at(segment)) result.tokens_after_result = true;
      result.tokens[segment].push_back(token.token());
    }
    for (const v1::SegmentResultEvent& event : message.results()) {
      const int segment = static_cast<int>(event.segment_index());
      if (done.at(segment)) result.result_twice = true;
      done[segment] = true;
      *result.response.mutable_results(segment) = event.result();
    }
  }
  result.status = reader->Finish();
  return result;
}

// The metrics endpoint's text, or "" when it does not answer.
inline std::string Metrics(const ServerProcess& server) {
  httplib::Client client("127.0.0.1", server.metrics_port());
  httplib::Result result = client.Get("/metrics");
  return result && result->status == 200 ? result->body : "";
}

// The value of the sample `series` (name with labels, as written) in `metrics`; -1 if absent.
inline double MetricValue(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return -1;
}

// Polls the metrics until `series` has `value` (at most ten seconds); its last value.
inline double WaitForMetric(const ServerProcess& server, const std::string& series, double value) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  double current = -1;
  while (std::chrono::steady_clock::now() < give_up) {
    current = MetricValue(Metrics(server), series);
    if (current == value) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return current;
}

// The oracle: the engine's own batch path, in this process, one request at a time.
inline const Translator& ReferenceTranslator() {
  static const Translator* translator = [] {
    auto model = LoadModel(kModelDir);
    EXPECT_TRUE(model.ok()) << model.status();
    TranslatorOptions options;
    options.threads = 1;
    auto created = Translator::Create(std::shared_ptr<const Model>(*std::move(model)), options);
    EXPECT_TRUE(created.ok()) << created.status();
    return created->release();
  }();
  return *translator;
}

inline std::vector<std::string> SampleLines() {
  std::vector<std::string> lines = absl::StrSplit(
      ReadFile(KVMT_SOURCE_DIR "/scripts/samples/ar-transliteration.txt"), '\n', absl::SkipEmpty());
  return lines;
}

inline std::vector<std::string> TestSetLines(size_t count) {
  std::vector<std::string> lines = absl::StrSplit(
      ReadFile(KVMT_SHARED_DIR "/testsets/flores200.devtest.eng_Latn"), '\n', absl::SkipEmpty());
  lines.resize(std::min(count, lines.size()));
  return lines;
}

// A request that keeps the server busy for a while: `segments` test-set sentences, exactly 250
// target tokens each. 64 segments with beam 4 take seconds (3 s on one core of an EPYC).
inline v1::TranslateRequest LongRequest(int beam = 4, size_t segments = 64) {
  v1::TranslateRequest request;
  for (const std::string& line : TestSetLines(segments)) request.add_segments()->set_text(line);
  request.mutable_options()->set_beam_size(static_cast<uint32_t>(beam));
  request.mutable_options()->set_min_decoding_length(250);
  request.mutable_options()->set_max_decoding_length(250);
  return request;
}

}  // namespace kvmt::testing
