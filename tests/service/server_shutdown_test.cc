// kvmt-server on SIGTERM: health goes NOT_SERVING, new calls are UNAVAILABLE, calls in flight
// finish within --shutdown-grace-seconds (or are cancelled past it), and it exits with 0.
#include <signal.h>

#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kRunning[] = "kvmt_running_segments{model=\"ct2-v2-aren-transliteration\"}";

std::unique_ptr<ServerProcess> StartServer(std::vector<std::string> args) {
  args.insert(args.begin(), {"--model", kModelDir, "--threads=1"});
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Waits until the server decodes something.
bool WaitUntilDecoding(const ServerProcess& server) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up) {
    if (MetricValue(Metrics(server), kRunning) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(ServerShutdownTest, SigtermLetsCallsInFlightFinishAndExitsZero) {
  std::unique_ptr<ServerProcess> server = StartServer({"--shutdown-grace-seconds=60"});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);

  grpc::ClientContext watch_context;
  auto watch = grpc::health::v1::Health::NewStub(channel)->Watch(
      &watch_context, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(watch->Read(&health));
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  const v1::TranslateRequest request = LongRequest(4, 16);
  UnaryResult in_flight;
  std::thread call([&] { in_flight = Translate(channel, request); });
  ASSERT_TRUE(WaitUntilDecoding(*server));
  ASSERT_EQ(kill(server->pid(), SIGTERM), 0);

  ASSERT_TRUE(watch->Read(&health));
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  watch_context.TryCancel();  // A watch is a call in flight too: let it go.
  watch->Finish();

  CallOptions quick;
  quick.timeout = std::chrono::seconds(10);
  v1::TranslateRequest small;
  small.add_segments()->set_text("آ ز ا");
  const UnaryResult refused = Translate(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()), small, quick);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(refused.status.error_message(), "the server is shutting down");

  call.join();
  ASSERT_TRUE(in_flight.status.ok()) << in_flight.status.error_message();
  ASSERT_EQ(in_flight.response.results_size(), 16);
  EXPECT_EQ(in_flight.response.results(15).hypotheses(0).tokens_size(), 250);

  EXPECT_EQ(server->Terminate(std::chrono::seconds(30)), 0) << server->log();
  const std::string log = server->log();
  EXPECT_THAT(log, HasSubstr("received SIGTERM"));
  EXPECT_THAT(log, HasSubstr("draining: NOT_SERVING"));
  EXPECT_THAT(log, HasSubstr("Translate peer="));
  EXPECT_THAT(log, HasSubstr(" stopped\n"));
}

TEST(ServerShutdownTest, CallsPastTheGraceAreCancelledAndTheServerStillExitsZero) {
  std::unique_ptr<ServerProcess> server = StartServer({"--shutdown-grace-seconds=0.1"});
  ASSERT_NE(server, nullptr);
  UnaryResult in_flight;
  std::thread call([&] { in_flight = Translate(Channel(*server), LongRequest(4, 128)); });
  ASSERT_TRUE(WaitUntilDecoding(*server));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server->Terminate(std::chrono::seconds(30)), 0) << server->log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  call.join();
  EXPECT_FALSE(in_flight.status.ok());
  EXPECT_THAT(server->log(), HasSubstr("CANCELLED"));
}

}  // namespace
}  // namespace kvmt::testing
