// deploy/nginx/kvmt-grpc.conf, run by Debian's nginx as this user with a temporary prefix, in
// front of two kvmt-server replicas on loopback: calls through nginx reach both replicas, every
// result equals kvmt-translate's output, streams and health checks pass through, and with one
// replica stopped the calls go to the other.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

constexpr char kOk[] = R"(kvmt_requests_total{method="Translate",code="OK"})";

// A loopback port nothing listens on right now (nginx cannot pick its own).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return connected;
}

// The shipped config with its upstream servers replaced by `replicas` (keeping their
// parameters) and its listen address by 127.0.0.1:`port`.
absl::StatusOr<std::string> ConfigFor(const std::vector<std::string>& replicas, int port) {
  const std::string shipped = ReadFile(KVMT_SOURCE_DIR "/deploy/nginx/kvmt-grpc.conf");
  const std::regex upstream_server(R"(^(\s*)server\s+[\w.\-]+:\d+(\s.*;)\s*$)");
  const std::regex listen(R"(^(\s*)listen\s+\S+(\s.*;)\s*$)");
  std::string config;
  int servers = 0;
  int listens = 0;
  for (absl::string_view piece : absl::StrSplit(shipped, '\n')) {
    const std::string line(piece);
    std::smatch match;
    if (std::regex_match(line, match, upstream_server)) {
      if (servers++ == 0) {
        for (const std::string& replica : replicas) {
          absl::StrAppend(&config, match[1].str(), "server ", replica, match[2].str(), "\n");
        }
      }
    } else if (std::regex_match(line, match, listen)) {
      ++listens;
      absl::StrAppend(&config, match[1].str(), "listen 127.0.0.1:", port, match[2].str(), "\n");
    } else {
      absl::StrAppend(&config, line, "\n");
    }
  }
  if (servers == 0 || listens != 1) {
    return absl::InternalError(
        absl::StrCat("deploy/nginx/kvmt-grpc.conf: expected upstream "
                     "'server HOST:PORT ...;' lines and one 'listen', got ",
                     servers, " and ", listens));
  }
  return config;
}

// nginx in one process (master_process off), so that killing it leaves nothing behind.
class Nginx {
 public:
  static absl::StatusOr<std::unique_ptr<Nginx>> Start(const std::vector<std::string>& replicas) {
    if (!std::filesystem::exists(KVMT_NGINX)) {
      return absl::NotFoundError(
          absl::StrCat("nginx not found (", KVMT_NGINX, "): run scripts/setup.sh"));
    }
    std::string failures;
    // A port found free may be taken before nginx binds it: then try another.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto nginx = std::unique_ptr<Nginx>(new Nginx());
      nginx->prefix_ = TempPath(absl::StrCat("nginx", attempt));
      std::filesystem::create_directories(nginx->prefix_);
      nginx->port_ = FreePort();
      absl::StatusOr<std::string> config = ConfigFor(replicas, nginx->port_);
      if (!config.ok()) return config.status();
      const std::string& dir = nginx->prefix_;
      WriteFile(dir + "/kvmt-grpc.conf", *config);
      WriteFile(dir + "/nginx.conf",
                absl::StrCat(
                    "daemon off;\nmaster_process off;\npid ", dir, "/nginx.pid;\n", "error_log ",
                    dir, "/error.log info;\n", "events { worker_connections 256; }\nhttp {\n",
                    "  access_log ", dir, "/access.log;\n", "  client_body_temp_path ", dir,
                    "/body;\n", "  proxy_temp_path ", dir, "/proxy;\n", "  fastcgi_temp_path ", dir,
                    "/fastcgi;\n", "  uwsgi_temp_path ", dir, "/uwsgi;\n", "  scgi_temp_path ", dir,
                    "/scgi;\n", "  include ", dir, "/kvmt-grpc.conf;\n}\n"));
      WriteFile(dir + "/stdin", "");
      nginx->pid_ =
          Spawn(KVMT_NGINX, {"-e", dir + "/error.log", "-p", dir, "-c", dir + "/nginx.conf"},
                dir + "/stdin", dir + "/stdout", dir + "/stderr");
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < give_up) {
        if (Accepts(nginx->port_)) return nginx;
        if (WaitForExit(nginx->pid_, std::chrono::milliseconds(0)) != -1) {
          nginx->pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      absl::StrAppend(&failures, "attempt ", attempt, ":\n", ReadFile(dir + "/stderr"),
                      ReadFile(dir + "/error.log"));
    }
    return absl::UnavailableError(absl::StrCat("nginx did not start:\n", failures));
  }

  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(prefix_, ignored);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string error_log() const { return ReadFile(prefix_ + "/error.log"); }

 private:
  Nginx() = default;
  std::string prefix_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// The oracle: kvmt-translate's output lines for `lines`.
std::vector<std::string> CliOutput(const std::vector<std::string>& lines) {
  const ToolRun run = RunTool(KVMT_TRANSLATE_BIN, {"--model", kModelDir, "--threads", "1"},
                              absl::StrCat(absl::StrJoin(lines, "\n"), "\n"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> outputs = absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(outputs.size(), lines.size()) << run.out;
  return outputs;
}

v1::TranslateRequest Request(const std::vector<std::string>& lines) {
  v1::TranslateRequest request;
  for (const std::string& line : lines) request.add_segments()->set_text(line);
  return request;
}

CallOptions WithTimeout() {
  CallOptions options;
  options.timeout = std::chrono::seconds(30);
  return options;
}

std::vector<std::string> Texts(const v1::TranslateResponse& response) {
  std::vector<std::string> texts;
  for (const v1::SegmentResult& result : response.results()) {
    texts.push_back(result.hypotheses_size() > 0 ? result.hypotheses(0).text() : "<none>");
  }
  return texts;
}

class NginxTwoReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* replica : {&first_, &second_}) {
      absl::StatusOr<std::unique_ptr<ServerProcess>> started =
          ServerProcess::Start({"--model", kModelDir, "--threads", "1"});
      ASSERT_TRUE(started.ok()) << started.status();
      *replica = *std::move(started);
    }
    absl::StatusOr<std::unique_ptr<Nginx>> nginx =
        Nginx::Start({first_->address(), second_->address()});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    channel_ = grpc::CreateChannel(nginx_->address(), grpc::InsecureChannelCredentials());
    lines_ = SampleLines();
    expected_ = CliOutput(lines_);
    ASSERT_EQ(expected_.size(), lines_.size());
  }

  // One call per line through nginx, each checked against the CLI; how many were OK.
  int TranslateEachLine() {
    int ok = 0;
    for (size_t i = 0; i < lines_.size(); ++i) {
      const UnaryResult result = Translate(channel_, Request({lines_[i]}), WithTimeout());
      EXPECT_TRUE(result.status.ok()) << lines_[i] << ": " << result.status.error_message() << "\n"
                                      << nginx_->error_log();
      if (!result.status.ok()) continue;
      EXPECT_EQ(Texts(result.response), std::vector<std::string>{expected_[i]}) << lines_[i];
      ++ok;
    }
    return ok;
  }

  std::unique_ptr<ServerProcess> first_;
  std::unique_ptr<ServerProcess> second_;
  std::unique_ptr<Nginx> nginx_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::string> lines_;
  std::vector<std::string> expected_;
};

TEST_F(NginxTwoReplicasTest, CallsReachBothReplicasAndEqualTheCli) {
  const int calls = 2 * static_cast<int>(lines_.size());
  EXPECT_EQ(TranslateEachLine() + TranslateEachLine(), calls);

  const UnaryResult all = Translate(channel_, Request(lines_), WithTimeout());
  ASSERT_TRUE(all.status.ok()) << all.status.error_message();
  EXPECT_EQ(Texts(all.response), expected_);

  const StreamResult stream = TranslateStream(channel_, Request(lines_), WithTimeout());
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(Texts(stream.response), expected_);

  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest health_request;
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(
      grpc::health::v1::Health::NewStub(channel_)->Check(&context, health_request, &health).ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // The replicas' own counts: both served, and together every unary call.
  const double first = MetricValue(Metrics(*first_), kOk);
  const double second = MetricValue(Metrics(*second_), kOk);
  EXPECT_GT(first, 0);
  EXPECT_GT(second, 0);
  EXPECT_EQ(first + second, calls + 1);
}

TEST_F(NginxTwoReplicasTest, CallsGoToTheOtherReplicaWhenOneStops) {
  EXPECT_EQ(TranslateEachLine(), static_cast<int>(lines_.size()));
  const double first_before = MetricValue(Metrics(*first_), kOk);
  ASSERT_GT(first_before, 0);
  ASSERT_GT(MetricValue(Metrics(*second_), kOk), 0);

  ASSERT_EQ(second_->Terminate(std::chrono::seconds(30)), 0);
  EXPECT_EQ(TranslateEachLine(), static_cast<int>(lines_.size()));
  EXPECT_EQ(MetricValue(Metrics(*first_), kOk), first_before + static_cast<double>(lines_.size()));
}

}  // namespace
}  // namespace kvmt::testing
