// The file pipeline over a fake backend whose "translation" of a segment is known in advance:
// order restored after sorting, windows written before the next is read, empty lines, bad lines
// under both policies, batch failures blamed on the right line, backend failures.
#include "tools/translate/file_translator.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/tools/temp_path.h"
#include "tools/translate/jsonl_format.h"
#include "tools/translate/plain_format.h"

namespace kvmt {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// "Translates" a segment into its words reversed and upper-cased, so that every output line is
// known from its input line alone. A segment holding "BAD" is rejected (INVALID_ARGUMENT, named
// like the engine names segments) and so is its whole request; "CRASH" is a backend failure.
class FakeBackend : public TranslationBackend {
 public:
  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) override {
    std::vector<std::string> batch;
    for (const v1::Segment& segment : request.segments()) batch.push_back(segment.text());
    batches.push_back(batch);
    if (on_translate) on_translate();
    v1::TranslateResponse response;
    for (int i = 0; i < request.segments_size(); ++i) {
      const std::string& text = request.segments(i).text();
      if (absl::StrContains(text, "CRASH")) return absl::InternalError("the backend broke");
      if (absl::StrContains(text, "BAD")) {
        return absl::InvalidArgumentError(absl::StrCat("segment ", i, ": holds BAD"));
      }
      v1::Hypothesis* hypothesis = response.add_results()->add_hypotheses();
      hypothesis->set_text(Expected(text));
      for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
        hypothesis->add_tokens(std::string(word));
      }
    }
    return response;
  }
  int SourceLength(const v1::Segment& segment) const override {
    return static_cast<int>(
        std::vector<absl::string_view>(absl::StrSplit(segment.text(), ' ', absl::SkipEmpty()))
            .size());
  }

  static std::string Expected(const std::string& text) {
    std::vector<std::string> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
    std::reverse(words.begin(), words.end());
    std::string joined = absl::StrJoin(words, " ");
    for (char& c : joined) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return joined;
  }

  std::vector<std::vector<std::string>> batches;
  std::function<void()> on_translate;
};

struct RunResult {
  absl::Status status;
  std::string output;    // What the output file holds.
  std::string messages;  // What went to the progress stream.
  FileTranslationStats stats;
};

class FileTranslatorTest : public testing::Test {
 protected:
  RunResult Run(const std::string& input, const FileTranslatorOptions& options,
                const LineFormat& format, int64_t max_line_bytes = 0) {
    path_ = TempPath("output.txt");
    absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Create(path_);
    EXPECT_TRUE(output.ok()) << output.status();
    std::istringstream in(input);
    LineReader reader(in, max_line_bytes, 5);
    OrderedWriter writer(**output, 1);
    std::ostringstream messages;
    Progress progress(messages, false);
    FileTranslator translator(options, format, backend_, progress);
    RunResult result;
    result.status = translator.Run(reader, writer);
    result.output = ReadFile((*output)->name());
    result.messages = messages.str();
    result.stats = translator.stats();
    return result;
  }

  std::string partial_path() const { return path_ + ".partial"; }

  static std::string ExpectedOutput(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& line : lines) absl::StrAppend(&out, FakeBackend::Expected(line), "\n");
    return out;
  }

  FakeBackend backend_;
  const PlainFormat plain_{v1::DecodingOptions(), false};
  std::string path_;
};

FileTranslatorOptions Options(int window, int batch, OnError on_error = OnError::kFail) {
  FileTranslatorOptions options;
  options.input_name = "in.txt";
  options.window_lines = window;
  options.batch.max_segments = batch;
  options.on_error = on_error;
  return options;
}

TEST_F(FileTranslatorTest, SortsByLengthAndWritesInInputOrder) {
  const std::vector<std::string> lines = {"a b c d", "e", "f g", "h i j", "k", "l m n o p", "q r"};
  const RunResult run = Run(absl::StrJoin(lines, "\n") + "\n", Options(100, 2), plain_);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.output, ExpectedOutput(lines));
  // One window: the two one-word lines first, then the two-word ones, and so on.
  ASSERT_EQ(backend_.batches.size(), 4u);
  EXPECT_EQ(backend_.batches[0], (std::vector<std::string>{"e", "k"}));
  EXPECT_EQ(backend_.batches[1], (std::vector<std::string>{"f g", "q r"}));
  EXPECT_EQ(run.stats.lines, 7);
  EXPECT_EQ(run.stats.segments, 7);
  EXPECT_EQ(run.stats.source_tokens, 18);
  EXPECT_EQ(run.stats.target_tokens, 18);
}

TEST_F(FileTranslatorTest, EachWindowIsWrittenBeforeTheNextIsRead) {
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) lines.push_back(absl::StrCat("w", i, " x"));
  std::vector<size_t> written_at_call;
  backend_.on_translate = [&] { written_at_call.push_back(ReadFile(partial_path()).size()); };
  const RunResult run = Run(absl::StrJoin(lines, "\n"), Options(3, 8), plain_);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.output, ExpectedOutput(lines));
  // Windows of 3 lines, one batch each: before the k-th call, k windows' lines are on disk.
  ASSERT_EQ(written_at_call.size(), 4u);
  const size_t line_bytes = FakeBackend::Expected("w0 x").size() + 1;
  for (size_t k = 0; k < written_at_call.size(); ++k) {
    EXPECT_EQ(written_at_call[k], 3 * k * line_bytes) << "call " << k;
  }
}

TEST_F(FileTranslatorTest, EmptyLinesStayEmptyAndNeverReachTheBackend) {
  const RunResult run = Run("\nx y\n\n\nz\n\n", Options(4, 8), plain_);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.output, "\nY X\n\n\nZ\n\n");
  for (const auto& batch : backend_.batches) {
    for (const std::string& text : batch) EXPECT_FALSE(text.empty());
  }
  EXPECT_EQ(run.stats.lines, 6);
  EXPECT_EQ(run.stats.segments, 2);
}

TEST_F(FileTranslatorTest, FailStopsAtTheFirstBadLineAfterWritingEveryLineBeforeIt) {
  // Line 5 is rejected by the backend, line 7 is not UTF-8: the run stops at line 5.
  const std::string input = "a\nb c d e\nf g\nh\nBAD x y z\ni\n\xff\nj\n";
  const RunResult run = Run(input, Options(100, 2), plain_);
  ASSERT_FALSE(run.status.ok());
  EXPECT_EQ(run.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(run.status.message(), "in.txt line 5: holds BAD");
  EXPECT_EQ(run.output, ExpectedOutput({"a", "b c d e", "f g", "h"}));
}

TEST_F(FileTranslatorTest, FailStopsReadingAtALineThatCannotBeParsed) {
  const RunResult run = Run("a b\nc\n\xc3\x28 bad utf-8\nd\n", Options(100, 8), plain_);
  ASSERT_FALSE(run.status.ok());
  EXPECT_EQ(run.status.message(), "in.txt line 3: not valid UTF-8 (byte 0)");
  EXPECT_EQ(run.output, ExpectedOutput({"a b", "c"}));
  for (const auto& batch : backend_.batches) {
    for (const std::string& text : batch) EXPECT_NE(text, "d");  // Never read.
  }
}

TEST_F(FileTranslatorTest, SkipWritesEmptyLinesAndNamesThem) {
  const std::string long_line(40, 'x');
  const std::string input = absl::StrCat("a\nBAD b\nc d\n", long_line, "\ne\n\xff\xfe\nf g h\n");
  const RunResult run = Run(input, Options(3, 2, OnError::kSkip), plain_, 30);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.output, "A\n\nD C\n\nE\n\nH G F\n");
  EXPECT_EQ(run.stats.bad_lines, 3);
  EXPECT_EQ(run.stats.listed_bad_lines, (std::vector<int64_t>{2, 4, 6}));
  EXPECT_NE(run.messages.find("in.txt line 2: holds BAD (written as an empty line)"),
            std::string::npos)
      << run.messages;
  EXPECT_NE(run.messages.find("in.txt line 4: the line has 40 bytes, more than --max-line-bytes"),
            std::string::npos)
      << run.messages;
  EXPECT_NE(run.messages.find("in.txt line 6: not valid UTF-8 (byte 0)"), std::string::npos)
      << run.messages;
  EXPECT_EQ(run.stats.lines, 7);
}

TEST_F(FileTranslatorTest, ARejectedBatchIsRetriedSegmentBySegment) {
  // One window, one batch of four: it fails, then each segment alone says who is to blame.
  const RunResult run = Run("p\nq\nBAD\nr\n", Options(10, 4, OnError::kSkip), plain_);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.output, "P\nQ\n\nR\n");
  ASSERT_EQ(backend_.batches.size(), 5u);
  EXPECT_EQ(backend_.batches[0].size(), 4u);
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(backend_.batches[i].size(), 1u);
  EXPECT_EQ(run.stats.bad_lines, 1);
}

TEST_F(FileTranslatorTest, ABackendFailureStopsTheRunWhateverThePolicy) {
  for (OnError on_error : {OnError::kFail, OnError::kSkip}) {
    backend_.batches.clear();
    const RunResult run = Run("a\nb\nCRASH\nc\n", Options(2, 8, on_error), plain_);
    ASSERT_FALSE(run.status.ok());
    EXPECT_EQ(run.status.code(), absl::StatusCode::kInternal);
    EXPECT_NE(run.status.message().find("the backend broke"), std::string::npos);
    EXPECT_EQ(run.output, "A\nB\n");  // The first window.
  }
}

TEST_F(FileTranslatorTest, AJsonlLineWaitsForAllItsSegmentsAcrossBatches) {
  const JsonlFormat jsonl(v1::DecodingOptions(), {});
  const std::string input = R"({"segments":[{"text":"one two three"},{"text":"x"}]})"
                            "\n"
                            R"({"segments":[{"text":"y z"}],"options":{"beamSize":2}})"
                            "\n"
                            R"({"segments":[{"text":"a"},{"text":"b BAD"}]})"
                            "\n";
  const RunResult run = Run(input, Options(10, 8, OnError::kSkip), jsonl);
  ASSERT_TRUE(run.status.ok()) << run.status;
  const std::vector<std::string> lines = absl::StrSplit(run.output, '\n');
  ASSERT_EQ(lines.size(), 4u) << run.output;
  EXPECT_EQ(
      lines[0],
      R"({"results":[{"hypotheses":[{"text":"THREE TWO ONE","tokens":["one","two","three"]}]},)"
      R"({"hypotheses":[{"text":"X","tokens":["x"]}]}]})");
  EXPECT_EQ(lines[1], R"({"results":[{"hypotheses":[{"text":"Z Y","tokens":["y","z"]}]}]})");
  EXPECT_EQ(lines[2], "");
  // Line 2's own options keep it out of the others' batches.
  for (const auto& batch : backend_.batches) {
    if (std::find(batch.begin(), batch.end(), "y z") != batch.end()) {
      EXPECT_EQ(batch.size(), 1u);
    }
  }
  EXPECT_NE(run.messages.find("in.txt line 3: segment 1: holds BAD"), std::string::npos)
      << run.messages;
}

TEST_F(FileTranslatorTest, ContinuesAfterSkippedLines) {
  // What --resume does: the reader has passed the lines already in the output.
  path_ = TempPath("output.txt");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Create(path_);
  ASSERT_TRUE(output.ok());
  ASSERT_TRUE((*output)->Append("B\nC\n").ok());
  std::istringstream in("b\nc\nd e\nf\n");
  LineReader reader(in, 0);
  ASSERT_EQ(*reader.Skip(2), 2);
  OrderedWriter writer(**output, 3);
  std::ostringstream messages;
  Progress progress(messages, false);
  FileTranslator translator(Options(10, 8), plain_, backend_, progress);
  ASSERT_TRUE(translator.Run(reader, writer).ok());
  EXPECT_EQ(ReadFile(partial_path()), "B\nC\nE D\nF\n");
  EXPECT_EQ(translator.stats().lines, 2);
}

}  // namespace
}  // namespace kvmt
