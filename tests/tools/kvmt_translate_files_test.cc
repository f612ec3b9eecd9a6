// kvmt-translate's file pipeline end to end on the real transliteration model: sorted batches
// against translating each line alone, a run killed with SIGKILL and resumed against an
// uninterrupted one, bad lines under both policies, TSV, progress, and peak memory against the
// input's size.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/sanitizers/sanitized.h"
#include "tests/tools/tool_run.h"

extern char** environ;

namespace kvmt {
namespace {

constexpr const char* kModel = kTransliterationModel;

// `count` lines of 1 to 10 letters of the model's source alphabet, separated by spaces,
// always the same for a given seed.
std::string VariedLines(int count, uint32_t seed) {
  const std::vector<std::string> letters = {"ي", "ا", "و", "ر", "ن", "ل", "س", "ت", "ب", "ك",
                                            "م", "د", "ف", "ش", "غ", "ه", "ز", "ج", "ح", "ع"};
  uint32_t state = seed;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return (state >> 8) & 0xffffu;
  };
  std::string text;
  for (int i = 0; i < count; ++i) {
    const uint32_t length = 1 + next() % 10;
    for (uint32_t j = 0; j < length; ++j) {
      absl::StrAppend(&text, j > 0 ? " " : "", letters[next() % letters.size()]);
    }
    text.push_back('\n');
  }
  return text;
}

int64_t CountNewlines(const std::string& text) {
  return static_cast<int64_t>(std::count(text.begin(), text.end(), '\n'));
}

// --model and the test model, then `flags` split on spaces.
std::vector<std::string> ModelAnd(absl::string_view flags) {
  std::vector<std::string> args = {"--model", kModel};
  for (absl::string_view flag : absl::StrSplit(flags, ' ')) args.emplace_back(flag);
  return args;
}

// The "peak RSS N MiB" of a run's summary.
double PeakRssMib(const std::string& err) {
  const size_t at = err.find("peak RSS ");
  if (at == std::string::npos) return -1;
  const size_t begin = at + 9;
  double mib = -1;
  if (!absl::SimpleAtod(err.substr(begin, err.find(' ', begin) - begin), &mib)) return -1;
  return mib;
}

TEST(KvmtTranslateFilesTest, SortedBatchesGiveWhatEachLineAloneGives) {
  const std::string input = TempPath("input.txt");
  WriteFile(input, VariedLines(300, 1));
  const ToolRun alone = RunTool({"--model", kModel, "--threads", "1", "--input", input,
                                 "--max-batch-size", "1", "--sort-window", "1"});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_EQ(CountNewlines(alone.out), 300);
  for (const char* tokens : {"8192", "24"}) {
    const ToolRun sorted = RunTool({"--model", kModel, "--threads", "1", "--input", input,
                                    "--max-batch-size", "16", "--max-batch-tokens", tokens});
    ASSERT_EQ(sorted.exit_code, 0) << sorted.err;
    EXPECT_EQ(sorted.out, alone.out) << "--max-batch-tokens " << tokens;
  }
}

TEST(KvmtTranslateFilesTest, WritesAPartialFileAndRenamesItAtTheEnd) {
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  WriteFile(input, VariedLines(20, 2));
  WriteFile(output + ".partial", "left over from an older run\n");
  const ToolRun run =
      RunTool({"--model", kModel, "--threads", "1", "--input", input, "--output", output});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(CountNewlines(ReadFile(output)), 20);
  EXPECT_FALSE(std::filesystem::exists(output + ".partial"));
}

// Starts kvmt-translate with `args`, stdout and stderr into files; returns its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& err) {
  std::vector<std::string> argv_strings = {KVMT_TRANSLATE_BIN};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? pid : -1;
}

TEST(KvmtTranslateFilesTest, ARunKilledMidwayResumesToTheSameBytes) {
  constexpr int kLines = 6000;
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  const std::string reference = TempPath("reference.txt");
  WriteFile(input, VariedLines(kLines, 3));
  std::vector<std::string> flags =
      ModelAnd("--threads 1 --beam-size 1 --sort-window 100 --max-batch-size 16 --input");
  flags.push_back(input);

  std::vector<std::string> killed_args = flags;
  killed_args.insert(killed_args.end(), {"--output", output});
  std::filesystem::remove(output);
  const pid_t pid = Spawn(killed_args, TempPath("killed.err"));
  ASSERT_GT(pid, 0);
  // Kill it once a quarter of the lines are on disk.
  int64_t lines_at_kill = 0;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    lines_at_kill = CountNewlines(ReadFile(output + ".partial"));
    if (lines_at_kill >= kLines / 4) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  const int64_t lines_left = CountNewlines(ReadFile(output + ".partial"));
  EXPECT_GE(lines_left, lines_at_kill);
  EXPECT_LT(lines_left, kLines) << "killed too late to test anything";
  EXPECT_FALSE(std::filesystem::exists(output));

  std::vector<std::string> resume_args = killed_args;
  resume_args.push_back("--resume");
  const ToolRun resumed = RunTool(resume_args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find(absl::StrCat("after its ", lines_left, " complete lines")),
            std::string::npos)
      << resumed.err;
  EXPECT_NE(resumed.err.find(absl::StrCat(kLines - lines_left, " lines,")), std::string::npos)
      << resumed.err;
  EXPECT_FALSE(std::filesystem::exists(output + ".partial"));

  std::vector<std::string> reference_args = flags;
  reference_args.insert(reference_args.end(), {"--output", reference});
  const ToolRun uninterrupted = RunTool(reference_args);
  ASSERT_EQ(uninterrupted.exit_code, 0) << uninterrupted.err;
  const std::string expected = ReadFile(reference);
  EXPECT_EQ(CountNewlines(expected), kLines);
  EXPECT_TRUE(ReadFile(output) == expected) << "the resumed output differs";
}

TEST(KvmtTranslateFilesTest, ResumeChecksWhatItContinues) {
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  WriteFile(input, VariedLines(2, 4));
  WriteFile(output + ".partial", "a\nb\nc\n");
  const ToolRun longer = RunTool(
      {"--model", kModel, "--threads", "1", "--input", input, "--output", output, "--resume"});
  EXPECT_EQ(longer.exit_code, 1);
  EXPECT_NE(longer.err.find("has 3 lines but the input only 2"), std::string::npos) << longer.err;

  const ToolRun to_stdout =
      RunTool({"--model", kModel, "--threads", "1", "--input", input, "--resume"});
  EXPECT_EQ(to_stdout.exit_code, 1);
  EXPECT_NE(to_stdout.err.find("--resume needs --output FILE"), std::string::npos) << to_stdout.err;
}

TEST(KvmtTranslateFilesTest, FailKeepsTheLinesBeforeTheBadOneForResume) {
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  std::filesystem::remove(output);
  const std::string lines = VariedLines(40, 5);
  const size_t third_line = lines.find('\n', lines.find('\n') + 1) + 1;
  // Line 3 is no longer UTF-8.
  const std::string broken =
      absl::StrCat(lines.substr(0, third_line), "\xff", lines.substr(third_line));
  WriteFile(input, broken);
  const ToolRun failed =
      RunTool({"--model", kModel, "--threads", "1", "--input", input, "--output", output});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.err.find(absl::StrCat(input, " line 3: not valid UTF-8 (byte 0)")),
            std::string::npos)
      << failed.err;
  EXPECT_NE(failed.err.find("the 2 lines translated before it are in " + output + ".partial"),
            std::string::npos)
      << failed.err;
  EXPECT_NE(failed.err.find("--resume"), std::string::npos) << failed.err;
  EXPECT_EQ(CountNewlines(ReadFile(output + ".partial")), 2);
  EXPECT_FALSE(std::filesystem::exists(output));

  WriteFile(input, lines);  // Fixed.
  const ToolRun resumed = RunTool(
      {"--model", kModel, "--threads", "1", "--input", input, "--output", output, "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const ToolRun whole = RunTool({"--model", kModel, "--threads", "1", "--input", input});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(ReadFile(output), whole.out);
}

TEST(KvmtTranslateFilesTest, SkipWritesEmptyLinesNamesThemAndExitsWithTwo) {
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  const std::string good = "آ ز ا";
  const std::string too_long = std::string(30, 'x');
  WriteFile(input, absl::StrCat(good, "\n\xc3\x28\n", good, "\n", too_long, "\n", good, "\n"));
  const ToolRun run = RunTool({"--model", kModel, "--threads", "1", "--input", input, "--output",
                               output, "--on-error=skip", "--max-line-bytes", "20"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_EQ(ReadFile(output), "a z z a\n\na z z a\n\na z z a\n");
  EXPECT_NE(run.err.find(absl::StrCat(input,
                                      " line 2: not valid UTF-8 (byte 0) (written as an "
                                      "empty line)")),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find(absl::StrCat(input,
                                      " line 4: the line has 30 bytes, more than "
                                      "--max-line-bytes 20")),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("2 bad lines written as empty lines: 2, 4"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("5 lines, 3 segments"), std::string::npos) << run.err;
}

TEST(KvmtTranslateFilesTest, ALineTheEngineRejectsInABatchIsBlamedAlone) {
  // 1 MiB of cache holds 42 blocks of 16 positions: a 700-letter source needs 44 for itself.
  std::string huge;
  for (int i = 0; i < 700; ++i) absl::StrAppend(&huge, i > 0 ? " " : "", "ب");
  const std::string input = absl::StrCat("آ ز ا\n", huge, "\nآ ز ا\n");
  const std::vector<std::string> flags = ModelAnd(
      "--threads 1 --cache-memory-mb 1 --beam-size 1 --max-decoding-length 16 "
      "--max-batch-tokens 0");
  std::vector<std::string> skip = flags;
  skip.push_back("--on-error=skip");
  const ToolRun skipped = RunTool(skip, input);
  EXPECT_EQ(skipped.exit_code, 2) << skipped.err;
  EXPECT_EQ(skipped.out, "a z z a\n\na z z a\n");
  EXPECT_NE(skipped.err.find("<stdin> line 2: "), std::string::npos) << skipped.err;
  EXPECT_NE(skipped.err.find("cache memory limit"), std::string::npos) << skipped.err;

  const ToolRun failed = RunTool(flags, input);
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(failed.out, "a z z a\n");
  EXPECT_NE(failed.err.find("<stdin> line 2: "), std::string::npos) << failed.err;
}

TEST(KvmtTranslateFilesTest, TsvTranslatesOneColumnAndKeepsTheOthers) {
  const ToolRun run = RunTool({"--model", kModel, "--threads", "1", "--column", "2"},
                              "id1\tآ ت ز م و ن\tnote\n\nid2\tآ ز ا\n\t\tx\n");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "id1\ta t z m o n\tnote\n\nid2\ta z z a\n\t\tx\n");
  EXPECT_NE(run.err.find("TSV column 2 input"), std::string::npos) << run.err;

  const ToolRun short_row =
      RunTool({"--model", kModel, "--threads", "1", "--column", "3"}, "a\tb\tc\nno tabs\n");
  EXPECT_EQ(short_row.exit_code, 1);
  EXPECT_NE(short_row.err.find("<stdin> line 2: the line has 1 tab-separated columns; --column "
                               "is 3"),
            std::string::npos)
      << short_row.err;

  const ToolRun with_jsonl =
      RunTool({"--model", kModel, "--threads", "1", "--column", "1", "--jsonl"}, "");
  EXPECT_EQ(with_jsonl.exit_code, 1);
}

TEST(KvmtTranslateFilesTest, TheProgressBarOnlyWhenAskedOrOnATerminal) {
  const std::string input = TempPath("input.txt");
  WriteFile(input, VariedLines(50, 6));
  // Standard error is a file here: no bar unless forced.
  const ToolRun plain = RunTool({"--model", kModel, "--threads", "1", "--input", input});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.err.find('\r'), std::string::npos) << plain.err;

  const ToolRun forced =
      RunTool({"--model", kModel, "--threads", "1", "--input", input, "--progress"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.err.find("\r\033[K"), std::string::npos) << forced.err;
  EXPECT_NE(forced.err.find("/50 lines ("), std::string::npos) << forced.err;
  EXPECT_NE(forced.err.find("target tokens/s, ETA "), std::string::npos) << forced.err;
  EXPECT_EQ(forced.out, plain.out);

  const ToolRun quiet = RunTool({"--model", kModel, "--threads", "1", "--input", input, "--quiet"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(quiet.out, plain.out);

  EXPECT_NE(RunTool({"--model", kModel, "--threads", "1", "--quiet", "--progress"}).exit_code, 0);
}

TEST(KvmtTranslateFilesTest, PeakMemoryDoesNotGrowWithTheInput) {
#ifdef KVMT_SANITIZED
  GTEST_SKIP() << "a sanitizer's allocator keeps freed memory in quarantine: RSS grows with the "
                  "number of allocations, not with what is live";
#endif
  // The same short lines, 10 times as many: the pipeline keeps one window, whatever the size.
  // (bench/translate_file_memory.sh does it with 1,000,000 lines.)
  const std::string lines = "آ ت ز م و ن\nآ ز ا\nم و ن\nز ا ت\n";
  std::vector<double> peaks;
  for (int copies : {1000, 10000}) {
    std::string text;
    for (int i = 0; i < copies; ++i) text += lines;
    const std::string input = TempPath(absl::StrCat("input", copies, ".txt"));
    const std::string output = TempPath(absl::StrCat("output", copies, ".txt"));
    WriteFile(input, text);
    const ToolRun run = RunTool({"--model", kModel, "--threads", "1", "--input", input, "--output",
                                 output, "--beam-size", "1"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(CountNewlines(ReadFile(output)), 4 * copies);
    peaks.push_back(PeakRssMib(run.err));
    ASSERT_GT(peaks.back(), 0) << run.err;
  }
  // Keeping every line, or every output line, of the larger run would take over 1.5 MiB more.
  EXPECT_LT(peaks[1] - peaks[0], 1.5)
      << "peak RSS " << peaks[0] << " MiB for 4000 lines, " << peaks[1] << " MiB for 40000";
}

}  // namespace
}  // namespace kvmt
