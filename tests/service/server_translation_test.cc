// kvmt-server end to end on the real model, over loopback: kvmt-client's output equals
// kvmt-translate's, unary and streaming; 64 concurrent clients each get what translating their
// request alone gives; ListModels, health, reflection and the metrics endpoint.
#include <google/protobuf/descriptor.pb.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/service/reflection_subset.grpc.pb.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

std::unique_ptr<ServerProcess> StartServer(std::vector<std::string> args = {}) {
  args.insert(args.begin(), {"--model", kModelDir, "--threads=1"});
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(ServerTranslationTest, ClientOutputEqualsTheCli) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  std::vector<std::string> lines = SampleLines();
  lines.push_back("");
  for (const std::string& line : TestSetLines(10)) lines.push_back(line);
  const std::string input = TempPath("input.txt");
  WriteFile(input, absl::StrCat(absl::StrJoin(lines, "\n"), "\n"));

  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{}, {"--beam-size=1"}, {"--beam-size=3", "--num-hypotheses=2"}}) {
    std::vector<std::string> common = {"--input", input, "--max-decoding-length=48",
                                       "--batch-size=7"};
    common.insert(common.end(), flags.begin(), flags.end());
    std::vector<std::string> cli_args = {
        "--model", kModelDir, "--threads=1", "--max-decoding-length=48", "--input", input};
    cli_args.insert(cli_args.end(), flags.begin(), flags.end());
    const ToolRun cli = RunTool(KVMT_TRANSLATE_BIN, cli_args);
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    ASSERT_EQ(std::count(cli.out.begin(), cli.out.end(), '\n'), static_cast<long>(lines.size()));

    std::vector<std::string> client_args = {"--server", server->address()};
    client_args.insert(client_args.end(), common.begin(), common.end());
    const ToolRun unary = RunTool(KVMT_CLIENT_BIN, client_args);
    ASSERT_EQ(unary.exit_code, 0) << unary.err;
    EXPECT_EQ(unary.out, cli.out) << absl::StrJoin(flags, " ");

    client_args.push_back("--stream");
    const ToolRun stream = RunTool(KVMT_CLIENT_BIN, client_args);
    ASSERT_EQ(stream.exit_code, 0) << stream.err;
    EXPECT_EQ(stream.out, cli.out) << "--stream " << absl::StrJoin(flags, " ");
  }
  EXPECT_THAT(server->log(), HasSubstr("TranslateStream peer="));
}

// Requests of 1 to 3 segments: Arabic names, several names run together, English sentences.
std::vector<v1::TranslateRequest> MixedRequests(int count) {
  const std::vector<std::string> names = SampleLines();
  const std::vector<std::string> sentences = TestSetLines(20);
  std::vector<v1::TranslateRequest> requests;
  for (int i = 0; i < count; ++i) {
    v1::TranslateRequest request;
    for (int s = 0; s <= i % 3; ++s) {
      const int k = i * 3 + s;
      switch (k % 3) {
        case 0:
          request.add_segments()->set_text(names[k % names.size()]);
          break;
        case 1:
          request.add_segments()->set_text(
              absl::StrCat(names[k % names.size()], " ", names[(k * 7 + 2) % names.size()]));
          break;
        default:
          request.add_segments()->set_text(sentences[k % sentences.size()]);
      }
    }
    request.mutable_options()->set_beam_size(i % 2 == 0 ? 1 : 4);
    request.mutable_options()->set_max_decoding_length(i % 5 == 0 ? 120 : 40);
    request.mutable_options()->set_return_scores(true);
    requests.push_back(request);
  }
  return requests;
}

void ExpectSameResults(const v1::TranslateResponse& actual, const v1::TranslateResponse& alone,
                       int request) {
  ASSERT_EQ(actual.results_size(), alone.results_size()) << "request " << request;
  for (int s = 0; s < alone.results_size(); ++s) {
    ASSERT_EQ(actual.results(s).hypotheses_size(), alone.results(s).hypotheses_size());
    for (int h = 0; h < alone.results(s).hypotheses_size(); ++h) {
      const v1::Hypothesis& a = actual.results(s).hypotheses(h);
      const v1::Hypothesis& e = alone.results(s).hypotheses(h);
      EXPECT_EQ(absl::StrJoin(a.tokens(), " "), absl::StrJoin(e.tokens(), " "))
          << "request " << request << " segment " << s;
      EXPECT_EQ(a.text(), e.text());
      EXPECT_NEAR(a.score(), e.score(), 1e-4);
    }
  }
}

TEST(ServerTranslationTest, SixtyFourConcurrentClientsEachGetWhatTranslatingAloneGives) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  constexpr int kClients = 64;
  const std::vector<v1::TranslateRequest> requests = MixedRequests(kClients);
  std::vector<v1::TranslateResponse> alone;
  for (const v1::TranslateRequest& request : requests) {
    auto response = ReferenceTranslator().Translate(request);
    ASSERT_TRUE(response.ok()) << response.status();
    alone.push_back(*std::move(response));
  }

  std::vector<UnaryResult> unary(kClients);
  std::vector<StreamResult> streamed(kClients);
  std::atomic<int> ready{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      // A channel each (its own connection), and everyone starts at once.
      grpc::ChannelArguments arguments;
      arguments.SetInt("kvmt-client", i);
      std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
          server->address(), grpc::InsecureChannelCredentials(), arguments);
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
      ++ready;
      while (ready.load() < kClients) std::this_thread::yield();
      if (i % 2 == 0) {
        unary[i] = Translate(channel, requests[i]);
      } else {
        streamed[i] = TranslateStream(channel, requests[i]);
      }
    });
  }
  for (std::thread& client : clients) client.join();

  for (int i = 0; i < kClients; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(unary[i].status.ok()) << i << ": " << unary[i].status.error_message();
      ExpectSameResults(unary[i].response, alone[i], i);
      continue;
    }
    const StreamResult& stream = streamed[i];
    ASSERT_TRUE(stream.status.ok()) << i << ": " << stream.status.error_message();
    ExpectSameResults(stream.response, alone[i], i);
    EXPECT_FALSE(stream.tokens_after_result);
    EXPECT_FALSE(stream.result_twice);
    for (int s = 0; s < requests[i].segments_size(); ++s) {
      // Greedy segments stream exactly their final tokens; beam search streams none.
      const auto& final_tokens = stream.response.results(s).hypotheses(0).tokens();
      const std::vector<std::string> expected =
          requests[i].options().beam_size() == 1
              ? std::vector<std::string>(final_tokens.begin(), final_tokens.end())
              : std::vector<std::string>();
      const auto found = stream.tokens.find(s);
      EXPECT_EQ(found == stream.tokens.end() ? std::vector<std::string>() : found->second, expected)
          << "request " << i << " segment " << s;
    }
  }
  // Segments did decode together: some step had more than one.
  const std::string metrics = Metrics(*server);
  const std::string model = "model=\"ct2-v2-aren-transliteration\"";
  const double steps = MetricValue(metrics, absl::StrCat("kvmt_batch_segments_count{", model, "}"));
  const double single =
      MetricValue(metrics, absl::StrCat("kvmt_batch_segments_bucket{", model, ",le=\"1\"}"));
  EXPECT_GT(steps, single) << metrics;
}

TEST(ServerTranslationTest, OneRequestAtATimeDecodesRequestsOneAfterTheOther) {
  std::unique_ptr<ServerProcess> server = StartServer({"--one-request-at-a-time"});
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> names = SampleLines();
  std::vector<UnaryResult> results(16);
  std::vector<v1::TranslateRequest> requests(16);
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    requests[i].add_segments()->set_text(names[i % names.size()]);
    clients.emplace_back([&, i] { results[i] = Translate(Channel(*server), requests[i]); });
  }
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
    auto alone = ReferenceTranslator().Translate(requests[i]);
    ASSERT_TRUE(alone.ok());
    ExpectSameResults(results[i].response, *alone, i);
  }
  const std::string metrics = Metrics(*server);
  const std::string model = "model=\"ct2-v2-aren-transliteration\"";
  const double steps = MetricValue(metrics, absl::StrCat("kvmt_batch_segments_count{", model, "}"));
  EXPECT_GT(steps, 0);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_batch_segments_bucket{", model, ",le=\"1\"}")),
            steps);
  EXPECT_THAT(server->log(), HasSubstr("one request at a time"));
}

TEST(ServerTranslationTest, ListModelsNamesEveryModelAndRequestsPickOne) {
  std::unique_ptr<ServerProcess> server =
      StartServer({"--model", absl::StrCat("i8=", kModelDir, "-i8")});
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  grpc::ClientContext context;
  v1::ListModelsResponse models;
  ASSERT_TRUE(v1::Translator::NewStub(channel)
                  ->ListModels(&context, v1::ListModelsRequest(), &models)
                  .ok());
  ASSERT_EQ(models.models_size(), 2);
  EXPECT_EQ(models.models(0).name(), "ct2-v2-aren-transliteration");
  EXPECT_TRUE(models.models(0).is_default());
  EXPECT_EQ(models.models(1).name(), "i8");
  EXPECT_FALSE(models.models(1).is_default());
  EXPECT_EQ(models.models(1).format(), "ctranslate2");
  EXPECT_EQ(models.models(1).d_model(), 32u);
  EXPECT_EQ(models.models(1).source_vocabulary_size(), 51u);
  EXPECT_EQ(models.models(1).default_beam_size(), 4u);
  EXPECT_EQ(models.models(0).compute_type(), "float32");
  EXPECT_EQ(models.models(1).compute_type(), "int8");

  v1::TranslateRequest request;
  request.add_segments()->set_text("آ ت ز م و ن");
  for (const char* name : {"", "i8", "ct2-v2-aren-transliteration"}) {
    request.set_model(name);
    const UnaryResult result = Translate(channel, request);
    ASSERT_TRUE(result.status.ok()) << name << ": " << result.status.error_message();
    EXPECT_EQ(result.response.results(0).hypotheses(0).text(), "a t z m o n") << name;
  }
  EXPECT_THAT(server->log(), HasSubstr("model=i8 "));
}

TEST(ServerTranslationTest, HealthIsServingAndClientSaysSo) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  auto health = grpc::health::v1::Health::NewStub(Channel(*server));
  for (const char* service : {"", "kvmt.v1.Translator"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  const ToolRun client = RunTool(KVMT_CLIENT_BIN, {"--server", server->address(), "--health"});
  EXPECT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(client.out, "SERVING\n");
}

TEST(ServerTranslationTest, ReflectionListsAndDescribesTheService) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(Channel(*server));
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);

  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> services;
  for (const auto& service : listed.list_services_response().service()) {
    services.push_back(service.name());
  }
  EXPECT_THAT(services, Contains("kvmt.v1.Translator"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));

  grpc::reflection::v1alpha::ServerReflectionRequest describe;
  describe.set_file_containing_symbol("kvmt.v1.Translator");
  ASSERT_TRUE(stream->Write(describe));
  grpc::reflection::v1alpha::ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  ASSERT_GE(described.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(described.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.package(), "kvmt.v1");
  ASSERT_EQ(file.service_size(), 1);
  std::map<std::string, bool> methods;  // Name -> server streaming.
  for (const auto& method : file.service(0).method()) {
    methods[method.name()] = method.server_streaming();
  }
  EXPECT_EQ(methods, (std::map<std::string, bool>{
                         {"ListModels", false}, {"Translate", false}, {"TranslateStream", true}}));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ServerTranslationTest, MetricsCountCallsTokensAndCache) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  v1::TranslateRequest request;
  request.add_segments()->set_text("آ ت ز م و ن");
  request.add_segments()->set_text("آ ز ا");
  ASSERT_TRUE(Translate(channel, request).status.ok());
  ASSERT_TRUE(Translate(channel, request).status.ok());  // The same sources: source-cache hits.
  ASSERT_TRUE(TranslateStream(channel, request).status.ok());
  ASSERT_EQ(Translate(channel, v1::TranslateRequest()).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  const std::string metrics = Metrics(*server);
  const std::string model = "{model=\"ct2-v2-aren-transliteration\"}";
  EXPECT_EQ(MetricValue(metrics, "kvmt_serving"), 1);
  EXPECT_EQ(MetricValue(metrics, "kvmt_requests_total{method=\"Translate\",code=\"OK\"}"), 2);
  EXPECT_EQ(
      MetricValue(metrics, "kvmt_requests_total{method=\"Translate\",code=\"INVALID_ARGUMENT\"}"),
      1);
  EXPECT_EQ(MetricValue(metrics, "kvmt_requests_total{method=\"TranslateStream\",code=\"OK\"}"), 1);
  EXPECT_EQ(MetricValue(metrics, "kvmt_request_duration_seconds_count{method=\"Translate\"}"), 3);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_segments_total", model)), 6);
  // "a t z m o n" and "a z z a": 10 target tokens per request.
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_target_tokens_total", model)), 30);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_source_cache_misses_total", model)), 2);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_source_cache_hits_total", model)), 4);
  EXPECT_NEAR(MetricValue(metrics, absl::StrCat("kvmt_source_cache_hit_rate", model)), 4.0 / 6,
              1e-9);
  EXPECT_GT(MetricValue(metrics, absl::StrCat("kvmt_cache_capacity_bytes", model)), 0);
  EXPECT_GT(MetricValue(metrics, absl::StrCat("kvmt_source_cache_bytes", model)), 0);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_cache_reserved_bytes", model)), 0);
  EXPECT_EQ(MetricValue(metrics, absl::StrCat("kvmt_queued_segments", model)), 0);
  EXPECT_THAT(metrics, HasSubstr("# TYPE kvmt_batch_segments histogram"));
  EXPECT_THAT(metrics, HasSubstr("kvmt_batch_segments_bucket{model=\"ct2-v2-aren-transliteration\","
                                 "le=\"+Inf\"}"));
}

}  // namespace
}  // namespace kvmt::testing
