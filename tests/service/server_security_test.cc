// kvmt-server's optional bearer token (UNAUTHENTICATED when missing or wrong; health stays
// open for probes) and TLS, with a self-signed certificate made by openssl for the test.
#include <cstdlib>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

using ::testing::HasSubstr;

v1::TranslateRequest Example() {
  v1::TranslateRequest request;
  request.add_segments()->set_text("آ ت ز م و ن");
  return request;
}

std::unique_ptr<ServerProcess> StartServer(std::vector<std::string> args) {
  args.insert(args.begin(), {"--model", kModelDir, "--threads=1"});
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(ServerSecurityTest, BearerTokenIsRequiredForTranslationsNotForHealth) {
  const std::string token_file = TempPath("token");
  WriteFile(token_file, "s3cret-token\n");
  std::unique_ptr<ServerProcess> server = StartServer({"--auth-token-file", token_file});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);

  struct Case {
    std::string authorization;
    std::string message;
  };
  for (const Case& bad : {Case{"", "missing 'authorization: Bearer <token>'"},
                          Case{"Basic czNjcmV0LXRva2Vu", "not a Bearer token"},
                          Case{"Bearer s3cret-tokeN", "wrong bearer token"},
                          Case{"Bearer s3cret-token-and-more", "wrong bearer token"},
                          Case{"Bearer s3cret", "wrong bearer token"}}) {
    CallOptions options;
    options.authorization = bad.authorization;
    const UnaryResult unary = Translate(channel, Example(), options);
    EXPECT_EQ(unary.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << bad.authorization;
    EXPECT_THAT(unary.status.error_message(), HasSubstr(bad.message));
    EXPECT_EQ(TranslateStream(channel, Example(), options).status.error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext context;
    if (!bad.authorization.empty()) context.AddMetadata("authorization", bad.authorization);
    v1::ListModelsResponse models;
    EXPECT_EQ(v1::Translator::NewStub(channel)
                  ->ListModels(&context, v1::ListModelsRequest(), &models)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }

  CallOptions good;
  good.authorization = "Bearer s3cret-token";
  const UnaryResult unary = Translate(channel, Example(), good);
  ASSERT_TRUE(unary.status.ok()) << unary.status.error_message();
  EXPECT_EQ(unary.response.results(0).hypotheses(0).text(), "a t z m o n");
  EXPECT_TRUE(TranslateStream(channel, Example(), good).status.ok());

  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(channel)
                  ->Check(&context, grpc::health::v1::HealthCheckRequest(), &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  const ToolRun client = RunTool(
      KVMT_CLIENT_BIN, {"--server", server->address(), "--auth-token-file", token_file}, "آ ز ا\n");
  EXPECT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(client.out, "a z z a\n");
  const ToolRun refused = RunTool(KVMT_CLIENT_BIN, {"--server", server->address()}, "آ ز ا\n");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(server->log(), ::testing::Not(HasSubstr("s3cret-token")));
}

TEST(ServerSecurityTest, TlsWithASelfSignedCertificate) {
  const std::string cert = TempPath("cert.pem");
  const std::string key = TempPath("key.pem");
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ",
      key, " -out ", cert, " 2>", TempPath("openssl.log"));
  ASSERT_EQ(std::system(command.c_str()), 0) << ReadFile(TempPath("openssl.log"));
  std::unique_ptr<ServerProcess> server = StartServer({"--tls-cert", cert, "--tls-key", key});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->log(), HasSubstr("(TLS)"));

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(cert);
  std::shared_ptr<grpc::Channel> secure =
      grpc::CreateChannel(server->address(), grpc::SslCredentials(ssl));
  const UnaryResult unary = Translate(secure, Example());
  ASSERT_TRUE(unary.status.ok()) << unary.status.error_message();
  EXPECT_EQ(unary.response.results(0).hypotheses(0).text(), "a t z m o n");

  CallOptions quick;
  quick.timeout = std::chrono::seconds(5);
  EXPECT_EQ(Translate(Channel(*server), Example(), quick).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);  // Plaintext to a TLS port.

  const ToolRun client =
      RunTool(KVMT_CLIENT_BIN, {"--server", server->address(), "--tls-ca", cert}, "آ ز ا\n");
  EXPECT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(client.out, "a z z a\n");
}

}  // namespace
}  // namespace kvmt::testing
