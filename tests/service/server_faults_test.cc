// kvmt-server when its model files fail: a --model that does not load stops the start-up with a
// non-zero exit and the reason; a model directory corrupted and then deleted while the server
// runs changes nothing, neither for the call in flight nor for the calls after (the model is
// read once at start-up).
#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"
#include "tests/service/test_client.h"

namespace kvmt::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh copy of the real model, in a folder of the model's name (which names the model).
fs::path CopyOfTheModel(const std::string& tag) {
  const fs::path dir = fs::path(TempPath(tag)) / "ct2-v2-aren-transliteration";
  fs::remove_all(dir.parent_path());
  fs::create_directories(dir.parent_path());
  fs::copy(kModelDir, dir);
  return dir;
}

std::vector<std::string> Texts(const v1::TranslateResponse& response) {
  std::vector<std::string> texts;
  for (const v1::SegmentResult& result : response.results()) {
    texts.push_back(result.hypotheses(0).text());
  }
  return texts;
}

std::vector<std::string> Expected(const v1::TranslateRequest& request) {
  absl::StatusOr<v1::TranslateResponse> response = ReferenceTranslator().Translate(request);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? Texts(*response) : std::vector<std::string>();
}

TEST(ServerFaultsTest, AModelThatDoesNotLoadStopsTheStartWithTheReason) {
  const ToolRun missing =
      RunTool(KVMT_SERVER_BIN, {"--model", "/nonexistent/kvmt-model", "--listen=127.0.0.1:0"});
  EXPECT_GT(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/kvmt-model"));

  const fs::path truncated = CopyOfTheModel("truncated");
  fs::resize_file(truncated / "model.bin", 100);
  const ToolRun corrupt =
      RunTool(KVMT_SERVER_BIN, {"--model", truncated.string(), "--listen=127.0.0.1:0"});
  EXPECT_GT(corrupt.exit_code, 0);
  EXPECT_THAT(corrupt.err, HasSubstr("model.bin"));
}

TEST(ServerFaultsTest, TheModelDirectoryCorruptedAndDeletedWhileServingChangesNothing) {
  const fs::path dir = CopyOfTheModel("served");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--model", dir.string(), "--threads=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::shared_ptr<grpc::Channel> channel = Channel(**server);

  // A stream in flight (greedy, 250 tokens per segment) while the files are destroyed.
  const v1::TranslateRequest long_request = LongRequest(/*beam=*/1, /*segments=*/16);
  grpc::ClientContext context;
  auto reader = v1::Translator::NewStub(channel)->TranslateStream(&context, long_request);
  v1::TranslateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));  // Decoding is under way.

  for (const fs::directory_entry& file : fs::directory_iterator(dir)) {
    std::ofstream(file.path(), std::ios::binary | std::ios::trunc) << std::string(64, '\xFF');
  }
  fs::remove_all(dir);

  std::vector<std::string> streamed(long_request.segments_size());
  do {
    for (const v1::SegmentResultEvent& event : message.results()) {
      streamed.at(event.segment_index()) = event.result().hypotheses(0).text();
    }
  } while (reader->Read(&message));
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, Expected(long_request));

  v1::TranslateRequest after;
  for (const std::string& line : SampleLines()) after.add_segments()->set_text(line);
  const UnaryResult result = Translate(channel, after);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(Texts(result.response), Expected(after));
  EXPECT_EQ((*server)->Terminate(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace kvmt::testing
