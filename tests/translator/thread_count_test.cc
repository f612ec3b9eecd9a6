// TranslatorOptions::threads bounds the threads a translation runs on: with 1, the process
// never starts an OpenMP worker. (oneDNN primitives keep the thread count they were built with,
// so this fails when the Translator builds them before applying `threads`, as it once did.) Its
// own binary, so that no other test has started threads in the process before.
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "model/model.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

int ThreadsOfThisProcess() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

TEST(ThreadCountTest, OneThreadMeansNoWorkerThreads) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration");
  ASSERT_TRUE(model.ok()) << model.status();
  TranslatorOptions options;
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<Translator>> translator =
      Translator::Create(*std::move(model), options);
  ASSERT_TRUE(translator.ok()) << translator.status();
  v1::TranslateRequest request;
  for (int i = 0; i < 8; ++i) request.add_segments()->set_text("آ ت ز م و ن");
  absl::StatusOr<v1::TranslateResponse> response = (*translator)->Translate(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results(0).hypotheses(0).text(), "a t z m o n");
  EXPECT_EQ(ThreadsOfThisProcess(), 1);
}

}  // namespace
}  // namespace kvmt
