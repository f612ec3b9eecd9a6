// kvmt-server on bad input and under pressure: every malformed request or limit gets its status
// code and a message naming the limit and the value, and the server carries on; a full queue is
// RESOURCE_EXHAUSTED; deadlines and cancellation stop decoding and give the cache back.
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kModel[] = "{model=\"ct2-v2-aren-transliteration\"}";

std::unique_ptr<ServerProcess> StartServer(std::vector<std::string> args = {}) {
  args.insert(args.begin(), {"--model", kModelDir, "--threads=1"});
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

v1::TranslateRequest Texts(std::initializer_list<std::string> texts) {
  v1::TranslateRequest request;
  for (const std::string& text : texts) request.add_segments()->set_text(text);
  return request;
}

struct BadRequest {
  std::string what;
  v1::TranslateRequest request;
  grpc::StatusCode code;
  std::string message;  // Part of the error message.
};

std::vector<BadRequest> BadRequests() {
  std::vector<BadRequest> cases;
  cases.push_back({"empty request", v1::TranslateRequest(), grpc::StatusCode::INVALID_ARGUMENT,
                   "request has no segments"});
  cases.push_back({"invalid UTF-8", Texts({"آ ز ا", "ab\xC3\x28"}),
                   grpc::StatusCode::INVALID_ARGUMENT, "segment 1: text is not valid UTF-8"});
  cases.push_back({"too many segments", Texts({"آ", "آ", "آ", "آ", "آ"}),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "request has 5 segments, more than the limit of 4 segments per request"});
  cases.push_back({"too many tokens", Texts({"آ ز ا", "آ ت ز م و ن آ ت ز"}),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "segment 1 has 9 source tokens, more than the limit of 8 tokens per segment"});
  cases.push_back({"too many bytes", Texts({std::string(70, 'x')}),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "segment 0 has 70 bytes, more than the limit of 64 bytes per segment"});
  BadRequest beam{"beam too large", Texts({"آ"}), grpc::StatusCode::INVALID_ARGUMENT,
                  "beam_size 9 is more than the limit of 8"};
  beam.request.mutable_options()->set_beam_size(9);
  cases.push_back(beam);
  BadRequest hypotheses{"more hypotheses than beams", Texts({"آ"}),
                        grpc::StatusCode::INVALID_ARGUMENT,
                        "num_hypotheses (3) must not exceed beam_size (2)"};
  hypotheses.request.mutable_options()->set_beam_size(2);
  hypotheses.request.mutable_options()->set_num_hypotheses(3);
  cases.push_back(hypotheses);
  BadRequest both{"text and tokens", Texts({"آ"}), grpc::StatusCode::INVALID_ARGUMENT,
                  "segment 0: give text or tokens, not both"};
  both.request.mutable_segments(0)->add_tokens("آ");
  cases.push_back(both);
  BadRequest model{"unknown model", Texts({"آ"}), grpc::StatusCode::NOT_FOUND,
                   "model 'nope' is not served here; models: ct2-v2-aren-transliteration"};
  model.request.set_model("nope");
  cases.push_back(model);
  return cases;
}

TEST(ServerErrorsTest, BadRequestsGetTheirStatusAndTheServerCarriesOn) {
  std::unique_ptr<ServerProcess> server =
      StartServer({"--max-segments-per-request=4", "--max-segment-tokens=8",
                   "--max-segment-bytes=64", "--max-beam-size=8"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  for (const BadRequest& bad : BadRequests()) {
    const UnaryResult unary = Translate(channel, bad.request);
    EXPECT_EQ(unary.status.error_code(), bad.code) << bad.what;
    EXPECT_THAT(unary.status.error_message(), HasSubstr(bad.message)) << bad.what;
    EXPECT_EQ(unary.response.results_size(), 0) << bad.what;
    const StreamResult stream = TranslateStream(channel, bad.request);
    EXPECT_EQ(stream.status.error_code(), bad.code) << bad.what;
    EXPECT_THAT(stream.status.error_message(), HasSubstr(bad.message)) << bad.what;
    EXPECT_EQ(stream.messages, 0) << bad.what;
  }
  const UnaryResult good = Translate(channel, Texts({"آ ت ز م و ن"}));
  ASSERT_TRUE(good.status.ok()) << good.status.error_message();
  EXPECT_EQ(good.response.results(0).hypotheses(0).text(), "a t z m o n");
  EXPECT_EQ(MetricValue(Metrics(*server),
                        "kvmt_requests_total{method=\"Translate\",code=\"INVALID_ARGUMENT\"}"),
            8);
  EXPECT_THAT(server->log(), HasSubstr("INVALID_ARGUMENT: request has 5 segments"));
}

TEST(ServerErrorsTest, FullQueueIsResourceExhausted) {
  std::unique_ptr<ServerProcess> server =
      StartServer({"--max-batch-size=1", "--max-queued-segments=32"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  const UnaryResult too_big = Translate(channel, LongRequest(4, 33));
  EXPECT_EQ(too_big.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(too_big.status.error_message(),
              HasSubstr("33 segments to translate, more than the queue holds (32)"));

  // While a long request holds the only place in the batch, its other 31 segments wait.
  grpc::ClientContext long_context;
  v1::TranslateResponse long_response;
  grpc::Status long_status;
  std::thread long_call([&] {
    long_status = v1::Translator::NewStub(channel)->Translate(&long_context, LongRequest(4, 32),
                                                              &long_response);
  });
  EXPECT_EQ(WaitForMetric(*server, absl::StrCat("kvmt_queued_segments", kModel), 31), 31);
  const UnaryResult rejected = Translate(channel, Texts({"آ", "آ ز"}));
  EXPECT_EQ(rejected.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(rejected.status.error_message(),
              HasSubstr("the queue is full: 31 segments waiting, limit 32; this request has 2"));
  long_context.TryCancel();
  long_call.join();
  EXPECT_EQ(long_status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(WaitForMetric(*server, absl::StrCat("kvmt_queued_segments", kModel), 0), 0);
}

TEST(ServerErrorsTest, DeadlineExceededStopsDecodingAndFreesTheCache) {
  std::unique_ptr<ServerProcess> server = StartServer({"--source-cache-mb=0"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  CallOptions options;
  options.timeout = std::chrono::milliseconds(100);
  const auto start = std::chrono::steady_clock::now();
  const UnaryResult unary = Translate(channel, LongRequest(), options);
  EXPECT_EQ(unary.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  const StreamResult stream = TranslateStream(channel, LongRequest(), options);
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  EXPECT_EQ(WaitForMetric(*server, absl::StrCat("kvmt_running_segments", kModel), 0), 0);
  const std::string metrics = Metrics(*server);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_cache_reserved_bytes", kModel)), 0);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_cache_used_bytes", kModel)), 0);
  EXPECT_GT(MetricValue(metrics, absl::StrCat("kvmt_cache_peak_used_bytes", kModel)), 0);
  // Decoding stopped: no step runs any more.
  const double steps = MetricValue(metrics, absl::StrCat("kvmt_decoder_steps_total", kModel));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(MetricValue(Metrics(*server), absl::StrCat("kvmt_decoder_steps_total", kModel)), steps);
  EXPECT_LT(steps, 250);  // Neither request got near its 250 steps.
}

TEST(ServerErrorsTest, DefaultDeadlineAppliesToCallsWithoutOne) {
  std::unique_ptr<ServerProcess> server = StartServer({"--default-deadline-seconds=0.2"});
  ASSERT_NE(server, nullptr);
  const UnaryResult result = Translate(Channel(*server), LongRequest());
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(result.status.error_message(), HasSubstr("deadline"));
}

TEST(ServerErrorsTest, CancelledStreamStopsDecodingAndFreesTheCache) {
  std::unique_ptr<ServerProcess> server = StartServer({"--source-cache-mb=0"});
  ASSERT_NE(server, nullptr);
  grpc::ClientContext context;
  auto reader =
      v1::Translator::NewStub(Channel(*server))->TranslateStream(&context, LongRequest(1));
  v1::TranslateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));  // Decoding is under way.
  ASSERT_GT(message.tokens_size(), 0);
  EXPECT_GT(MetricValue(Metrics(*server), absl::StrCat("kvmt_cache_used_bytes", kModel)), 0);
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(WaitForMetric(*server, absl::StrCat("kvmt_running_segments", kModel), 0), 0);
  EXPECT_EQ(WaitForMetric(*server, absl::StrCat("kvmt_cache_used_bytes", kModel), 0), 0);
  const std::string metrics = Metrics(*server);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_cache_reserved_bytes", kModel)), 0);
  EXPECT_LT(MetricValue(metrics, absl::StrCat("kvmt_decoder_steps_total", kModel)), 250);
  EXPECT_EQ(WaitForMetric(*server,
                          "kvmt_requests_total{method=\"TranslateStream\",code=\"CANCELLED\"}", 1),
            1);
}

}  // namespace
}  // namespace kvmt::testing
