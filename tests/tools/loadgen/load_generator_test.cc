// RunLoad against a fake kvmt.v1.Translator that echoes each segment's words as its tokens and
// counts what it receives, so every figure of the report has an independent expected value.
#include "tools/loadgen/load_generator.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kvmt/v1/translation.grpc.pb.h"
#include "tools/loadgen/load_requests.h"

namespace kvmt {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// Echoes segments: the hypothesis's tokens are the segment's words. Text "fail" ends the call
// with RESOURCE_EXHAUSTED, "slow" answers after 500 ms; with a token set, calls must carry it.
class EchoTranslator final : public v1::Translator::Service {
 public:
  explicit EchoTranslator(std::string token = "") : token_(std::move(token)) {}

  grpc::Status Translate(grpc::ServerContext* context, const v1::TranslateRequest* request,
                         v1::TranslateResponse* response) override {
    Enter(*request);
    grpc::Status status = Check(*context, *request);
    if (status.ok()) {
      for (const v1::Segment& segment : request->segments()) {
        *response->add_results() = Echo(segment);
      }
    }
    --in_flight_;
    return status;
  }

  grpc::Status TranslateStream(grpc::ServerContext* context, const v1::TranslateRequest* request,
                               grpc::ServerWriter<v1::TranslateStreamResponse>* writer) override {
    Enter(*request);
    grpc::Status status = Check(*context, *request);
    // One message per segment, so that the first message comes before the call's end.
    for (int i = 0; status.ok() && i < request->segments_size(); ++i) {
      v1::TranslateStreamResponse message;
      v1::SegmentResultEvent* event = message.add_results();
      event->set_segment_index(static_cast<uint32_t>(i));
      *event->mutable_result() = Echo(request->segments(i));
      writer->Write(message);
    }
    --in_flight_;
    return status;
  }

  int peak_in_flight() const { return peak_in_flight_; }
  int64_t calls() const { return calls_; }
  std::map<std::string, int> segments_seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return segments_seen_;
  }
  v1::TranslateRequest last_request() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_request_;
  }

 private:
  static v1::SegmentResult Echo(const v1::Segment& segment) {
    v1::SegmentResult result;
    v1::Hypothesis* best = result.add_hypotheses();
    best->set_text(segment.text());
    for (absl::string_view word : absl::StrSplit(segment.text(), ' ', absl::SkipEmpty())) {
      best->add_tokens(std::string(word));
    }
    // A second hypothesis the report must not count.
    result.add_hypotheses()->add_tokens("ignored");
    return result;
  }

  void Enter(const v1::TranslateRequest& request) {
    const int now = ++in_flight_;
    int peak = peak_in_flight_.load();
    while (now > peak && !peak_in_flight_.compare_exchange_weak(peak, now)) {
    }
    ++calls_;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const v1::Segment& segment : request.segments()) ++segments_seen_[segment.text()];
    last_request_ = request;
  }

  grpc::Status Check(const grpc::ServerContext& context, const v1::TranslateRequest& request) {
    if (!token_.empty()) {
      auto it = context.client_metadata().find("authorization");
      if (it == context.client_metadata().end() ||
          std::string(it->second.data(), it->second.size()) != "Bearer " + token_) {
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
      }
    }
    // Long enough for calls to overlap.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (const v1::Segment& segment : request.segments()) {
      if (segment.text() == "fail") {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
      }
      if (segment.text() == "slow") {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    return grpc::Status::OK;
  }

  const std::string token_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> peak_in_flight_{0};
  std::atomic<int64_t> calls_{0};
  mutable std::mutex mutex_;
  std::map<std::string, int> segments_seen_;
  v1::TranslateRequest last_request_;
};

class LoadGeneratorTest : public ::testing::Test {
 protected:
  void Serve(std::string token = "") {
    service_ = std::make_unique<EchoTranslator>(std::move(token));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  LoadOptions Options(int concurrency, int64_t requests) const {
    LoadOptions options;
    options.server = address_;
    options.concurrency = concurrency;
    options.max_requests = requests;
    options.duration = absl::ZeroDuration();
    options.deadline = absl::Seconds(10);
    return options;
  }

  std::unique_ptr<EchoTranslator> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

const std::vector<std::string> kLines = {"a b", "c", "d e f"};

// Words of the lines request after request would send, K lines per request.
int64_t ExpectedTokens(const std::vector<std::string>& lines, int64_t requests, int k) {
  int64_t tokens = 0;
  for (int64_t i = 0; i < requests * k; ++i) {
    const std::string& line = lines[static_cast<size_t>(i) % lines.size()];
    tokens += static_cast<int64_t>(std::count(line.begin(), line.end(), ' ')) + 1;
  }
  return tokens;
}

TEST(PercentileTest, NearestRank) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);
  EXPECT_EQ(Percentile(values, 50), 50);
  EXPECT_EQ(Percentile(values, 95), 95);
  EXPECT_EQ(Percentile(values, 99), 99);
  EXPECT_EQ(Percentile(values, 100), 100);
  EXPECT_EQ(Percentile({7}, 50), 7);
  EXPECT_EQ(Percentile({1, 2}, 50), 1);
  EXPECT_EQ(Percentile({1, 2}, 51), 2);
  EXPECT_EQ(Percentile({}, 99), 0);
}

std::vector<std::vector<std::string>> Texts(const std::vector<v1::TranslateRequest>& requests) {
  std::vector<std::vector<std::string>> texts;
  for (const v1::TranslateRequest& request : requests) {
    texts.emplace_back();
    for (const v1::Segment& segment : request.segments()) texts.back().push_back(segment.text());
  }
  return texts;
}

TEST(LoadRequestsTest, LinesCycleUntilTheFirstLineStartsARequestAgain) {
  using Request = std::vector<std::string>;
  EXPECT_THAT(Texts(RequestsFromLines({"a", "", "b", "c"}, 2)),
              ElementsAre(Request{"a", "b"}, Request{"c", "a"}, Request{"b", "c"}));
  EXPECT_THAT(Texts(RequestsFromLines({"a", "b"}, 1)), ElementsAre(Request{"a"}, Request{"b"}));
  EXPECT_THAT(Texts(RequestsFromLines({"a", "b"}, 4)), ElementsAre(Request{"a", "b", "a", "b"}));
  EXPECT_TRUE(RequestsFromLines({"", "  "}, 1).empty());
}

TEST(LoadRequestsTest, JsonLines) {
  absl::StatusOr<std::vector<v1::TranslateRequest>> requests = RequestsFromJsonLines(
      {R"({"segments":[{"text":"a b"},{"tokens":["c"]}]})", "", R"({"segments":[{"text":"d"}]})"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  ASSERT_EQ(requests->size(), 2u);
  EXPECT_EQ((*requests)[0].segments(1).tokens(0), "c");
  EXPECT_EQ((*requests)[1].segments(0).text(), "d");

  requests = RequestsFromJsonLines({R"({"segments":[]})", R"({"segmnts":[]})"});
  EXPECT_EQ(requests.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(requests.status().message().find("input line 2"), std::string::npos)
      << requests.status();
}

TEST_F(LoadGeneratorTest, CountsRequestsSegmentsAndBestHypothesisTokens) {
  Serve();
  LoadOptions options = Options(4, 10);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines(kLines, 2));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests, 10);
  EXPECT_EQ(report->ok_requests, 10);
  EXPECT_EQ(report->segments, 20);
  EXPECT_EQ(report->target_tokens, ExpectedTokens(kLines, 10, 2));
  EXPECT_TRUE(report->errors.empty());
  EXPECT_EQ(report->latency_ms.size(), 10u);
  EXPECT_GE(Percentile(report->latency_ms, 50), 20);  // The server's sleep.
  EXPECT_GT(report->seconds, 0);
  // Round-robin: 20 segments over 3 lines.
  EXPECT_THAT(service_->segments_seen(),
              ElementsAre(Pair("a b", 7), Pair("c", 7), Pair("d e f", 6)));
  EXPECT_EQ(service_->calls(), 10);
  EXPECT_LE(service_->peak_in_flight(), 4);
  EXPECT_GE(service_->peak_in_flight(), 2);
}

TEST_F(LoadGeneratorTest, StreamCountsResultsAndFirstMessages) {
  Serve();
  LoadOptions options = Options(3, 9);
  options.stream = true;
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines(kLines, 3));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok_requests, 9);
  EXPECT_EQ(report->segments, 27);
  EXPECT_EQ(report->target_tokens, ExpectedTokens(kLines, 9, 3));
  ASSERT_EQ(report->first_response_ms.size(), 9u);
  for (size_t i = 0; i < 9; ++i) EXPECT_LE(report->first_response_ms[i], report->latency_ms[i]);
  EXPECT_EQ(ToJson(*report)["first_response_ms"]["p50"].get<double>(),
            Percentile(report->first_response_ms, 50));
}

TEST_F(LoadGeneratorTest, FailedCallsAreCountedByStatusCode) {
  Serve();
  LoadOptions options = Options(2, 8);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines({"a", "fail"}, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests, 8);
  EXPECT_EQ(report->ok_requests, 4);
  EXPECT_EQ(report->segments, 4);
  EXPECT_THAT(report->errors, ElementsAre(Pair("RESOURCE_EXHAUSTED", 4)));
  EXPECT_EQ(report->first_error_message.at("RESOURCE_EXHAUSTED"), "queue full");
  EXPECT_EQ(report->latency_ms.size(), 4u);
  const nlohmann::json json = ToJson(*report);
  EXPECT_EQ(json["errors"]["RESOURCE_EXHAUSTED"], 4);
  EXPECT_EQ(json["ok_requests"], 4);
  EXPECT_NE(FormatText(*report).find("RESOURCE_EXHAUSTED x4: queue full"), std::string::npos);
}

TEST_F(LoadGeneratorTest, DeadlineEndsSlowCalls) {
  Serve();
  LoadOptions options = Options(2, 4);
  options.deadline = absl::Milliseconds(100);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines({"slow", "a"}, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok_requests, 2);
  EXPECT_THAT(report->errors, ElementsAre(Pair("DEADLINE_EXCEEDED", 2)));
}

TEST_F(LoadGeneratorTest, SendsTheBearerTokenModelAndOptions) {
  Serve("secret");
  LoadOptions options = Options(1, 2);
  options.auth_token = "secret";
  options.model = "m1";
  options.decoding.set_beam_size(3);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines(kLines, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok_requests, 2);
  EXPECT_EQ(service_->last_request().model(), "m1");
  EXPECT_EQ(service_->last_request().options().beam_size(), 3u);

  options.auth_token = "wrong";
  report = RunLoad(options, RequestsFromLines(kLines, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok_requests, 0);
  EXPECT_THAT(report->errors, ElementsAre(Pair("UNAUTHENTICATED", 2)));
}

TEST_F(LoadGeneratorTest, RequestOptionsOverrideTheFlagsFieldByField) {
  Serve();
  absl::StatusOr<std::vector<v1::TranslateRequest>> requests = RequestsFromJsonLines(
      {R"({"model":"m2","segments":[{"text":"a"}],"options":{"beamSize":5}})"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  LoadOptions options = Options(1, 1);
  options.model = "m1";
  options.decoding.set_beam_size(3);
  options.decoding.set_max_decoding_length(9);
  absl::StatusOr<LoadReport> report = RunLoad(options, *requests);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok_requests, 1);
  EXPECT_EQ(service_->last_request().model(), "m2");
  EXPECT_EQ(service_->last_request().options().beam_size(), 5u);
  EXPECT_EQ(service_->last_request().options().max_decoding_length(), 9u);
}

TEST_F(LoadGeneratorTest, DurationStopsNewCalls) {
  Serve();
  LoadOptions options = Options(2, 0);
  options.duration = absl::Milliseconds(300);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines(kLines, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  // 20 ms per call, 2 at a time: about 30 calls; the bounds leave room for a busy machine.
  EXPECT_GE(report->requests, 4);
  EXPECT_LE(report->requests, 32);
  EXPECT_EQ(report->requests, service_->calls());
  EXPECT_GE(report->seconds, 0.3);
  EXPECT_LT(report->seconds, 5);
}

TEST(LoadGeneratorErrorsTest, UnreachableServerAndBadOptions) {
  LoadOptions options;
  options.server = "127.0.0.1:1";
  options.connect_timeout = absl::Milliseconds(200);
  absl::StatusOr<LoadReport> report = RunLoad(options, RequestsFromLines(kLines, 1));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable) << report.status();
  EXPECT_NE(report.status().message().find("127.0.0.1:1"), std::string::npos);

  EXPECT_EQ(RunLoad(options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RunLoad(options, RequestsFromLines({"", " "}, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.concurrency = 0;
  EXPECT_EQ(RunLoad(options, RequestsFromLines(kLines, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.concurrency = 1;
  options.tls_ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(RunLoad(options, RequestsFromLines(kLines, 1)).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvmt
