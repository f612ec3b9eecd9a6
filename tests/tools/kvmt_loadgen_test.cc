// kvmt-loadgen as a process against a kvmt-server on the real model: its counts against what
// the requests must produce (segments sent; target tokens of kvmt-translate's output for the
// same lines) and against the server's own metrics; streaming, failed calls, unreachable server,
// TLS and bearer token.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

class KvmtLoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start({"--model", kModelDir, "--threads", "1"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    lines_ = SampleLines();
    input_ = TempPath("input.txt");
    WriteFile(input_, absl::StrCat(absl::StrJoin(lines_, "\n"), "\n"));
  }

  // Runs kvmt-loadgen with --json and returns its report.
  nlohmann::json Load(std::vector<std::string> args) {
    args.insert(args.end(), {"--server", server_->address(), "--input", input_, "--json",
                             "--deadline-ms", "30000"});
    const ToolRun run = RunTool(KVMT_LOADGEN_BIN, args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    nlohmann::json report = nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(report.is_object()) << run.out << run.err;
    return report;
  }

  // Target tokens of kvmt-translate's output for each sample line.
  std::vector<int64_t> CliTargetTokens() const {
    const ToolRun run =
        RunTool(KVMT_TRANSLATE_BIN, {"--model", kModelDir, "--threads", "1"}, ReadFile(input_));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::vector<int64_t> tokens;
    for (absl::string_view line : absl::StrSplit(run.out, '\n', absl::SkipEmpty())) {
      tokens.push_back(static_cast<int64_t>(
          std::vector<absl::string_view>(absl::StrSplit(line, ' ', absl::SkipEmpty())).size()));
    }
    EXPECT_EQ(tokens.size(), lines_.size());
    return tokens;
  }

  std::unique_ptr<ServerProcess> server_;
  std::vector<std::string> lines_;
  std::string input_;
};

TEST_F(KvmtLoadgenTest, CountsMatchTheRequestsTheCliAndTheServer) {
  // 30 requests of 2 segments: 60 segments, every sample line 5 times.
  ASSERT_EQ(lines_.size(), 12u);
  const nlohmann::json report = Load(
      {"--concurrency", "4", "--requests", "30", "--duration", "0", "--segments-per-request", "2"});
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["requests"], 30);
  EXPECT_EQ(report["ok_requests"], 30);
  EXPECT_EQ(report["errors"], nlohmann::json::object());
  EXPECT_EQ(report["segments"], 60);
  int64_t expected_tokens = 0;
  for (int64_t tokens : CliTargetTokens()) expected_tokens += 5 * tokens;
  EXPECT_EQ(report["target_tokens"], expected_tokens);
  EXPECT_GT(report["requests_per_second"].get<double>(), 0);
  EXPECT_LE(report["latency_ms"]["p50"].get<double>(), report["latency_ms"]["p99"].get<double>());

  const std::string metrics = Metrics(*server_);
  EXPECT_EQ(MetricValue(metrics, R"(kvmt_requests_total{method="Translate",code="OK"})"), 30);
  EXPECT_EQ(MetricValue(metrics, R"(kvmt_segments_total{model="ct2-v2-aren-transliteration"})"),
            60);
  EXPECT_EQ(
      MetricValue(metrics, R"(kvmt_target_tokens_total{model="ct2-v2-aren-transliteration"})"),
      expected_tokens);
}

TEST_F(KvmtLoadgenTest, StreamingCountsTheSame) {
  const nlohmann::json report =
      Load({"--concurrency", "3", "--requests", "12", "--duration", "0", "--stream"});
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["ok_requests"], 12);
  EXPECT_EQ(report["segments"], 12);
  int64_t expected_tokens = 0;
  for (int64_t tokens : CliTargetTokens()) expected_tokens += tokens;
  EXPECT_EQ(report["target_tokens"], expected_tokens);
  EXPECT_TRUE(report.contains("first_response_ms"));
  EXPECT_EQ(
      MetricValue(Metrics(*server_), R"(kvmt_requests_total{method="TranslateStream",code="OK"})"),
      12);
}

TEST_F(KvmtLoadgenTest, DecodingFlagsReachTheServer) {
  // Greedy search with min = max = 7 target tokens: exactly 7 per segment.
  const nlohmann::json report = Load({"--requests", "5", "--duration", "0", "--beam-size", "1",
                                      "--min-decoding-length", "7", "--max-decoding-length", "7"});
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["ok_requests"], 5);
  EXPECT_EQ(report["target_tokens"], 35);
}

TEST_F(KvmtLoadgenTest, FailedCallsAreReportedByCode) {
  const nlohmann::json report = Load(
      {"--concurrency", "2", "--requests", "4", "--duration", "0", "--model", "no-such-model"});
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["requests"], 4);
  EXPECT_EQ(report["ok_requests"], 0);
  EXPECT_EQ(report["errors"], nlohmann::json({{"NOT_FOUND", 4}}));
  EXPECT_NE(report["first_error_message"]["NOT_FOUND"].get<std::string>().find("no-such-model"),
            std::string::npos);
}

TEST_F(KvmtLoadgenTest, ChecksEveryResultAgainstTheExpectedOutput) {
  const ToolRun cli =
      RunTool(KVMT_TRANSLATE_BIN, {"--model", kModelDir, "--threads", "1"}, ReadFile(input_));
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  const std::string expected = TempPath("expected.txt");
  WriteFile(expected, cli.out);
  for (const char* mode : {"--stream", "--nostream"}) {
    const nlohmann::json report =
        Load({"--concurrency", "3", "--requests", "24", "--duration", "0", "--segments-per-request",
              "2", "--expected", expected, mode});
    ASSERT_TRUE(report.is_object());
    EXPECT_EQ(report["ok_requests"], 24) << mode;
    EXPECT_EQ(report["errors"], nlohmann::json::object()) << mode;
  }

  // One expected line changed: every call that translates that line is a wrong translation.
  std::vector<std::string> outputs = absl::StrSplit(cli.out, '\n');
  outputs[3] = "not what the model says";
  WriteFile(expected, absl::StrJoin(outputs, "\n"));
  const nlohmann::json report =
      Load({"--requests", "12", "--duration", "0", "--expected", expected});
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["errors"], nlohmann::json({{"WRONG_TRANSLATION", 1}}));
  EXPECT_NE(report["first_error_message"]["WRONG_TRANSLATION"].get<std::string>().find(
                absl::StrCat("'", lines_[3], "' gave '")),
            std::string::npos)
      << report;
}

TEST_F(KvmtLoadgenTest, CancelsAndDrawsDeadlinesOnRequest) {
  // Every segment decodes 200 greedy steps, far longer than 1 to 3 ms.
  const std::vector<std::string> slow = {"--server", server_->address(),
                                         "--input",  input_,
                                         "--json",   "--requests",
                                         "8",        "--duration",
                                         "0",        "--beam-size",
                                         "1",        "--min-decoding-length",
                                         "200",      "--max-decoding-length",
                                         "200"};
  std::vector<std::string> args = slow;
  args.insert(args.end(), {"--deadline-ms", "1", "--deadline-ms-max", "3"});
  ToolRun run = RunTool(KVMT_LOADGEN_BIN, args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["errors"], nlohmann::json({{"DEADLINE_EXCEEDED", 8}}));

  args = slow;
  args.insert(args.end(), {"--cancel-fraction", "1", "--cancel-within-ms", "2", "--stream"});
  run = RunTool(KVMT_LOADGEN_BIN, args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["errors"], nlohmann::json({{"CANCELLED", 8}}));

  // Half of them, by the seed's draws: the same half every time.
  args = slow;
  args.insert(args.end(), {"--cancel-fraction", "0.5", "--cancel-within-ms", "2"});
  run = RunTool(KVMT_LOADGEN_BIN, args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json half = nlohmann::json::parse(run.out);
  EXPECT_GT(half["errors"].value("CANCELLED", 0), 0) << half;
  EXPECT_GT(half["ok_requests"].get<int>(), 0) << half;
  run = RunTool(KVMT_LOADGEN_BIN, args);
  EXPECT_EQ(nlohmann::json::parse(run.out)["errors"], half["errors"]);

  args = slow;
  args.insert(args.end(), {"--cancel-fraction", "2"});
  run = RunTool(KVMT_LOADGEN_BIN, args);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--cancel-fraction must be in [0, 1]"), std::string::npos) << run.err;
}

TEST_F(KvmtLoadgenTest, TextReportAndUsageErrors) {
  const ToolRun run = RunTool(KVMT_LOADGEN_BIN, {"--server", server_->address(), "--input", input_,
                                                 "--requests", "3", "--duration", "0"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("requests              3"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("latency ms     p50 "), std::string::npos) << run.out;

  const ToolRun unreachable = RunTool(KVMT_LOADGEN_BIN, {"--server", "127.0.0.1:1", "--input",
                                                         input_, "--connect-timeout-ms", "200"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("cannot connect to 127.0.0.1:1"), std::string::npos)
      << unreachable.err;

  const ToolRun no_input = RunTool(KVMT_LOADGEN_BIN, {"--server", server_->address()});
  EXPECT_EQ(no_input.exit_code, 1);
  EXPECT_NE(no_input.err.find("--input is required"), std::string::npos) << no_input.err;
}

TEST(KvmtLoadgenSecurityTest, TlsRootsServerNameAndBearerToken) {
  const std::string cert = TempPath("cert.pem");
  const std::string key = TempPath("key.pem");
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ",
      key, " -out ", cert, " 2>", TempPath("openssl.log"));
  ASSERT_EQ(std::system(command.c_str()), 0) << ReadFile(TempPath("openssl.log"));
  const std::string token = TempPath("token");
  WriteFile(token, "s3cret\n");
  const std::string wrong_token = TempPath("wrong_token");
  WriteFile(wrong_token, "guess\n");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--model", kModelDir, "--threads", "1", "--tls-cert", cert, "--tls-key",
                            key, "--auth-token-file", token});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string input = TempPath("input.txt");
  WriteFile(input, absl::StrCat(absl::StrJoin(SampleLines(), "\n"), "\n"));
  auto load = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--server", (*server)->address(), "--input", input, "--requests", "4",
                             "--duration", "0", "--json", "--connect-timeout-ms", "2000"});
    return RunTool(KVMT_LOADGEN_BIN, args);
  };

  const ToolRun ok = load({"--tls-ca", cert, "--auth-token-file", token});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  nlohmann::json report = nlohmann::json::parse(ok.out, nullptr, false);
  EXPECT_EQ(report["ok_requests"], 4) << ok.out;

  // The certificate names localhost and 127.0.0.1, not this name: no connection.
  const ToolRun wrong_name =
      load({"--tls-ca", cert, "--auth-token-file", token, "--tls-server-name", "other.example"});
  EXPECT_EQ(wrong_name.exit_code, 1) << wrong_name.out;
  EXPECT_NE(wrong_name.err.find("cannot connect"), std::string::npos) << wrong_name.err;

  const ToolRun refused = load({"--tls-ca", cert, "--auth-token-file", wrong_token});
  ASSERT_EQ(refused.exit_code, 0) << refused.err;
  report = nlohmann::json::parse(refused.out, nullptr, false);
  EXPECT_EQ(report["errors"], nlohmann::json({{"UNAUTHENTICATED", 4}})) << refused.out;
}

}  // namespace
}  // namespace kvmt::testing
