// kvmt-translate --server: the same file pipeline over a kvmt-server started on a loopback port.
// The oracle is kvmt-translate translating the same input in its own process.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/service/server_process.h"

namespace kvmt::testing {
namespace {

constexpr char kModel[] = KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";

// `count` lines of 1 to 8 letters of the model's source alphabet.
std::string Lines(int count) {
  const char* letters[] = {"ي", "ا", "و", "ر", "ن", "ل", "س", "ت", "ب", "ك", "م", "د"};
  std::string text;
  for (int i = 0; i < count; ++i) {
    for (int j = 0; j <= (i * 7 + i / 3) % 8; ++j) {
      absl::StrAppend(&text, j > 0 ? " " : "", letters[(i * 5 + j * 3) % 12]);
    }
    text.push_back('\n');
  }
  return text;
}

int64_t CountNewlines(const std::string& text) {
  return static_cast<int64_t>(std::count(text.begin(), text.end(), '\n'));
}

ToolRun Translate(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  return RunTool(KVMT_TRANSLATE_BIN, args, stdin_text);
}

TEST(KvmtTranslateRemoteTest, GivesWhatTheLocalRunGives) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--model", kModel, "--threads", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string input = TempPath("input.txt");
  WriteFile(input, Lines(120));
  const std::string jsonl =
      R"({"segments":[{"text":"آ ت ز م و ن"},{"tokens":["آ","ز","ا"]}],"options":{"beamSize":2}})"
      "\n\n"
      R"({"model":"ct2-v2-aren-transliteration","segments":[{"text":"م و ن"}]})"
      "\n";
  const std::string tsv = "a\tآ ت ز م و ن\tz\n\nb\tم و ن\tyy\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--input", input}, ""},
      {{"--beam-size", "1", "--max-batch-size", "7", "--input", input, "--progress"}, ""},
      {{"--jsonl"}, jsonl},
      {{"--column", "2", "--return-scores"}, tsv},
  };
  for (const auto& [flags, stdin_text] : cases) {
    std::vector<std::string> local = {"--model", kModel, "--threads", "1"};
    local.insert(local.end(), flags.begin(), flags.end());
    std::vector<std::string> remote = {"--server", (*server)->address()};
    remote.insert(remote.end(), flags.begin(), flags.end());
    const ToolRun expected = Translate(local, stdin_text);
    const ToolRun got = Translate(remote, stdin_text);
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    ASSERT_EQ(got.exit_code, 0) << got.err;
    EXPECT_FALSE(got.out.empty());
    EXPECT_EQ(got.out, expected.out) << flags.front();
    EXPECT_NE(
        got.err.find("server " + (*server)->address() + ", model ct2-v2-aren-transliteration"),
        std::string::npos)
        << got.err;
  }
  const ToolRun progress = Translate(
      {"--server", (*server)->address(), "--input", input, "--progress", "--sort-window", "16"});
  EXPECT_NE(progress.err.find("/120 lines ("), std::string::npos) << progress.err;
}

TEST(KvmtTranslateRemoteTest, ALineTheServerRejectsIsBlamedAlone) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--model", kModel, "--threads", "1", "--max-segment-bytes", "20"});
  ASSERT_TRUE(server.ok()) << server.status();
  // Line 2 has 23 bytes, over the server's limit; lines 1 and 3 share its batch.
  const std::string input = "آ ز ا\nآ ت ز م و ن ن ن\nم و ن\n";
  const ToolRun skipped =
      Translate({"--server", (*server)->address(), "--on-error=skip", "--beam-size", "1"}, input);
  EXPECT_EQ(skipped.exit_code, 2) << skipped.err;
  EXPECT_EQ(CountNewlines(skipped.out), 3);
  EXPECT_EQ(skipped.out.substr(0, skipped.out.find('\n')), "a z z a");
  EXPECT_NE(skipped.out.find("\n\n"), std::string::npos) << skipped.out;  // Line 2 is empty.
  EXPECT_NE(skipped.err.find("<stdin> line 2: "), std::string::npos) << skipped.err;
  EXPECT_NE(skipped.err.find("20"), std::string::npos) << skipped.err;
  EXPECT_NE(skipped.err.find("bad lines written as empty lines: 2"), std::string::npos)
      << skipped.err;
}

TEST(KvmtTranslateRemoteTest, AServerThatGoesAwayStopsTheRunAndResumeFinishesIt) {
  constexpr int kLines = 3000;
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  WriteFile(input, Lines(kLines));
  std::filesystem::remove(output);
  std::filesystem::remove(output + ".partial");
  const ToolRun local =
      Translate({"--model", kModel, "--threads", "1", "--input", input, "--beam-size", "1"});
  ASSERT_EQ(local.exit_code, 0) << local.err;

  absl::StatusOr<std::unique_ptr<ServerProcess>> first =
      ServerProcess::Start({"--model", kModel, "--threads", "1"});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::vector<std::string> flags = {"--input",          input, "--output",        output,
                                          "--beam-size",      "1",   "--sort-window",   "50",
                                          "--max-batch-size", "10",  "--retry-seconds", "0"};
  std::vector<std::string> args = {"--server", (*first)->address()};
  args.insert(args.end(), flags.begin(), flags.end());
  const std::string base = TempPath("interrupted");
  WriteFile(base + ".in", "");
  const pid_t client = Spawn(KVMT_TRANSLATE_BIN, args, base + ".in", base + ".out", base + ".err");
  ASSERT_GT(client, 0);
  // Kill the server once some lines are written, before the client is done.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (CountNewlines(ReadFile(output + ".partial")) < 300 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill((*first)->pid(), SIGKILL);
  const int status = WaitForExit(client, std::chrono::seconds(60));
  EXPECT_EQ(status, 1) << ReadFile(base + ".err");
  const int64_t kept = CountNewlines(ReadFile(output + ".partial"));
  EXPECT_GE(kept, 300);
  EXPECT_LT(kept, kLines) << "the server went away too late to test anything";
  EXPECT_NE(ReadFile(base + ".err").find("--resume"), std::string::npos) << ReadFile(base + ".err");

  absl::StatusOr<std::unique_ptr<ServerProcess>> second =
      ServerProcess::Start({"--model", kModel, "--threads", "1"});
  ASSERT_TRUE(second.ok()) << second.status();
  args = {"--server", (*second)->address(), "--resume"};
  args.insert(args.end(), flags.begin(), flags.end());
  const ToolRun resumed = Translate(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(ReadFile(output) == local.out) << "the resumed output differs";
}

TEST(KvmtTranslateRemoteTest, ModelAndFlagMistakesAreNamed) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--model", kModel, "--threads", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const ToolRun unknown = Translate({"--server", (*server)->address(), "--model", "nope"}, "آ\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("serves no model 'nope'; it serves: ct2-v2-aren-transliteration"),
            std::string::npos)
      << unknown.err;
  const ToolRun engine_flag =
      Translate({"--server", (*server)->address(), "--cache-memory-mb", "8"}, "آ\n");
  EXPECT_EQ(engine_flag.exit_code, 1);
  EXPECT_NE(engine_flag.err.find("--cache-memory-mb has no effect with --server"),
            std::string::npos)
      << engine_flag.err;
  const ToolRun without_server = Translate({"--model", kModel, "--tls-ca", "ca.pem"}, "آ\n");
  EXPECT_EQ(without_server.exit_code, 1);
  EXPECT_NE(without_server.err.find("need --server"), std::string::npos) << without_server.err;
}

}  // namespace
}  // namespace kvmt::testing
