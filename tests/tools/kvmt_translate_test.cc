// kvmt-translate, run as a subprocess on the real transliteration model. The expected
// translations are the ones CTranslate2's own tests publish for this model.
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kvmt/v1/translation.pb.h"
#include "tests/tools/tool_run.h"

namespace kvmt {
namespace {

constexpr const char* kModel = kTransliterationModel;
constexpr char kSource1[] = "آ ت ز م و ن";
constexpr char kTarget1[] = "a t z m o n";
constexpr char kSource2[] = "آ ز ا";
constexpr char kTarget2[] = "a z z a";

TEST(KvmtTranslateTest, TranslatesAFileWithBeamSearch) {
  const std::string input = TempPath("input.txt");
  const std::string output = TempPath("output.txt");
  WriteFile(input, absl::StrCat(kSource1, "\n", kSource2, "\n"));
  const ToolRun run = RunTool({"--model", kModel, "--input", input, "--output=" + output});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ReadFile(output), absl::StrCat(kTarget1, "\n", kTarget2, "\n"));
  EXPECT_EQ(run.out, "");
}

TEST(KvmtTranslateTest, EveryVersionAndPrecisionGivesTheKnownAnswers) {
  for (const char* name : {"ct2-v1-aren-transliteration", "ct2-v1-aren-transliteration-i16",
                           "ct2-v2-aren-transliteration", "ct2-v2-aren-transliteration-i8",
                           "ct2-v2-aren-transliteration-i16"}) {
    const ToolRun run = RunTool({"--model", absl::StrCat(KVMT_SHARED_DIR, "/models/", name)},
                                absl::StrCat(kSource1, "\n", kSource2, "\n"));
    ASSERT_EQ(run.exit_code, 0) << name << ": " << run.err;
    EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n", kTarget2, "\n")) << name;
  }
}

TEST(KvmtTranslateTest, TranslatesStdinToStdout) {
  const ToolRun run = RunTool({"--model", kModel}, absl::StrCat(kSource1, "\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n", kTarget2, "\n"));
}

TEST(KvmtTranslateTest, ExplicitDashesMeanStdinAndStdout) {
  const ToolRun run =
      RunTool({"--model", kModel, "--input", "-", "--output", "-"}, absl::StrCat(kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget2, "\n"));
}

TEST(KvmtTranslateTest, KeepsEmptyLinesInPlace) {
  const std::string input = absl::StrCat("\n", kSource1, "\n\n\n", kSource2, "\n\n");
  const std::string expected = absl::StrCat("\n", kTarget1, "\n\n\n", kTarget2, "\n\n");
  for (const char* batch_size : {"1", "2", "32"}) {
    const ToolRun run = RunTool({"--model", kModel, "--max-batch-size", batch_size}, input);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out, expected) << "--max-batch-size " << batch_size;
    EXPECT_EQ(Lines(run.out).size(), 6u);
  }
}

TEST(KvmtTranslateTest, CountsALastLineWithoutNewline) {
  const std::string input = TempPath("input.txt");
  WriteFile(input, absl::StrCat(kSource1, "\n", kSource2));
  const ToolRun run = RunTool({"--model", kModel, "--input", input});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n", kTarget2, "\n"));
}

TEST(KvmtTranslateTest, EmptyInputGivesEmptyOutput) {
  const ToolRun run = RunTool({"--model", kModel}, "");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "");
}

TEST(KvmtTranslateTest, TokenizedModeGivesTheSameResultForThisModel) {
  const ToolRun run =
      RunTool({"--model", kModel, "--tokenized"}, absl::StrCat(kSource1, "\n\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n\n", kTarget2, "\n"));
}

TEST(KvmtTranslateTest, NoCacheGivesTheSameOutput) {
  const ToolRun run =
      RunTool({"--model", kModel, "--no-cache"}, absl::StrCat(kSource1, "\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n", kTarget2, "\n"));
  EXPECT_NE(run.err.find("cache off"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, GreedySearchRuns) {
  const ToolRun run = RunTool({"--model", kModel, "--beam-size", "1", "--threads", "1"},
                              absl::StrCat(kSource1, "\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[0].empty());
  EXPECT_FALSE(lines[1].empty());
  EXPECT_NE(run.err.find("beam size 1"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, SeveralHypothesesShareTheirLine) {
  const ToolRun run = RunTool({"--model", kModel, "--num-hypotheses", "2", "--beam-size", "2"},
                              absl::StrCat(kSource1, "\n\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "");
  const std::vector<std::string> first = absl::StrSplit(lines[0], " ||| ");
  const std::vector<std::string> second = absl::StrSplit(lines[2], " ||| ");
  ASSERT_EQ(first.size(), 2u) << lines[0];
  ASSERT_EQ(second.size(), 2u) << lines[2];
  EXPECT_EQ(first[0], kTarget1);
  EXPECT_EQ(second[0], kTarget2);
  EXPECT_FALSE(first[1].empty());
  EXPECT_NE(first[1], first[0]);
  EXPECT_NE(second[1], second[0]);
}

TEST(KvmtTranslateTest, ReturnScoresPrefixesEachHypothesis) {
  const ToolRun run = RunTool({"--model", kModel, "--return-scores", "--num-hypotheses", "2"},
                              absl::StrCat(kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 1u);
  const std::vector<std::string> hypotheses = absl::StrSplit(lines[0], " ||| ");
  ASSERT_EQ(hypotheses.size(), 2u) << lines[0];
  std::vector<float> scores;
  std::vector<std::string> texts;
  for (const std::string& hypothesis : hypotheses) {
    const std::vector<std::string> parts = absl::StrSplit(hypothesis, absl::MaxSplits('\t', 1));
    ASSERT_EQ(parts.size(), 2u) << hypothesis;
    float score = 0;
    ASSERT_TRUE(absl::SimpleAtof(parts[0], &score)) << parts[0];
    EXPECT_LT(score, 0.0f);  // A log-probability.
    scores.push_back(score);
    texts.push_back(parts[1]);
  }
  EXPECT_EQ(texts[0], kTarget2);
  EXPECT_GE(scores[0], scores[1]);  // Best first.
}

TEST(KvmtTranslateTest, JsonlRoundTrip) {
  // Line 1: tokens and text in one request; line 3: its own options override the flags'.
  const std::string input =
      absl::StrCat(R"({"segments":[{"tokens":["آ","ت","ز","م","و","ن"]},{"text":")", kSource2,
                   R"("}]})", "\n\n", R"({"segments":[{"text":")", kSource2,
                   R"("}],"options":{"beamSize":2,"numHypotheses":2,"returnScores":true}})", "\n");
  const ToolRun run = RunTool({"--model", kModel, "--jsonl"}, input);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_EQ(lines[1], "");

  v1::TranslateResponse first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &first).ok()) << lines[0];
  ASSERT_EQ(first.results_size(), 2);
  ASSERT_EQ(first.results(0).hypotheses_size(), 1);
  EXPECT_EQ(first.results(0).hypotheses(0).text(), kTarget1);
  EXPECT_EQ(absl::StrJoin(first.results(0).hypotheses(0).tokens(), " "), kTarget1);
  EXPECT_EQ(first.results(1).hypotheses(0).text(), kTarget2);
  EXPECT_EQ(first.results(1).hypotheses(0).score(), 0.0f);  // Scores were not asked for.

  v1::TranslateResponse third;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[2], &third).ok()) << lines[2];
  ASSERT_EQ(third.results_size(), 1);
  ASSERT_EQ(third.results(0).hypotheses_size(), 2);
  EXPECT_EQ(third.results(0).hypotheses(0).text(), kTarget2);
  EXPECT_LT(third.results(0).hypotheses(0).score(), 0.0f);
}

TEST(KvmtTranslateTest, JsonlMalformedLineIsNamed) {
  const std::string input = absl::StrCat(R"({"segments":[{"text":")", kSource2, R"("}]})", "\n",
                                         R"({"segments": [)", "\n");
  const ToolRun run = RunTool({"--model", kModel, "--jsonl"}, input);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("<stdin> line 2"), std::string::npos) << run.err;
  // The line before the malformed one is still translated.
  const std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 1u) << run.out;
  v1::TranslateResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &response).ok()) << lines[0];
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).hypotheses(0).text(), kTarget2);
}

TEST(KvmtTranslateTest, JsonlRequestMustNameTheLoadedModel) {
  const std::string input = absl::StrCat(
      R"({"model":"ct2-v2-aren-transliteration","segments":[{"text":")", kSource2, R"("}]})", "\n",
      R"({"model":"another-model","segments":[{"text":")", kSource2, R"("}]})", "\n");
  const ToolRun run = RunTool({"--model", kModel, "--jsonl"}, input);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("<stdin> line 2"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("another-model"), std::string::npos) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 1u) << run.out;
}

TEST(KvmtTranslateTest, JsonlUnknownFieldIsAnError) {
  const ToolRun run = RunTool({"--model", kModel, "--jsonl"}, "{\"segmets\":[]}\n");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("line 1"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, JsonlInvalidOptionsAreNamed) {
  const std::string input =
      absl::StrCat(R"({"segments":[{"text":")", kSource2,
                   R"("}],"options":{"beamSize":1,"numHypotheses":3}})", "\n");
  const ToolRun run = RunTool({"--model", kModel, "--jsonl"}, input);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("line 1"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("num_hypotheses"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, BadLineNamesTheLineAndKeepsEveryLineBeforeIt) {
  // Line 4, invalid UTF-8, is to blame; lines 1-3 are written, line 5 is not.
  const std::string input =
      absl::StrCat(kSource1, "\n", kSource2, "\n", kSource1, "\n", "\xff\xfe\n", kSource2, "\n");
  const ToolRun run = RunTool({"--model", kModel, "--max-batch-size", "2"}, input);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("<stdin> line 4: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("UTF-8"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("line 3"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(kTarget1, "\n", kTarget2, "\n", kTarget1, "\n"));
}

TEST(KvmtTranslateTest, InvalidUtf8IsAnErrorNamingTheLine) {
  const ToolRun run = RunTool({"--model", kModel}, absl::StrCat(kSource1, "\n\xff\xfe\n"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("line 2"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("UTF-8"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, BadFlagValuesFailWithAMessage) {
  const std::vector<std::vector<std::string>> cases = {
      {"--beam-size", "-1"},
      {"--num-hypotheses", "3", "--beam-size", "2"},
      {"--max-batch-size", "0"},
      {"--threads", "-2"},
      {"--length-penalty", "abc"},
      {"--sampling-temperature", "0"},
      {"--min-decoding-length", "10", "--max-decoding-length", "5"},
      {"--tokenized", "--jsonl"},
      {"--bogus-flag", "1"},
      {"stray-positional-argument"},
  };
  for (const std::vector<std::string>& flags : cases) {
    std::vector<std::string> args = {"--model", kModel};
    args.insert(args.end(), flags.begin(), flags.end());
    const ToolRun run = RunTool(args, absl::StrCat(kSource2, "\n"));
    const std::string what = absl::StrJoin(flags, " ");
    EXPECT_NE(run.exit_code, 0) << what;
    EXPECT_FALSE(run.err.empty()) << what;
    EXPECT_EQ(run.out, "") << what;
  }
  const ToolRun run = RunTool({"--model", kModel, "--beam-size", "-1"});
  EXPECT_NE(run.err.find("--beam-size must be >= 0"), std::string::npos) << run.err;
  const ToolRun too_many =
      RunTool({"--model", kModel, "--num-hypotheses", "3", "--beam-size", "2"});
  EXPECT_NE(too_many.err.find("num_hypotheses (3) must not exceed beam_size (2)"),
            std::string::npos)
      << too_many.err;
}

TEST(KvmtTranslateTest, MissingModelFails) {
  const std::string missing = TempPath("no_such_model");
  const ToolRun run = RunTool({"--model", missing}, absl::StrCat(kSource2, "\n"));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot load the model"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");

  const ToolRun no_flag = RunTool({}, absl::StrCat(kSource2, "\n"));
  EXPECT_EQ(no_flag.exit_code, 1);
  EXPECT_NE(no_flag.err.find("--model is required"), std::string::npos) << no_flag.err;
}

TEST(KvmtTranslateTest, ABrokenModelFailsWithTheReasonBeforeReadingInput) {
  // Copies of the real model, each broken in one way; the reason names the file at fault.
  struct Case {
    const char* name;
    std::function<void(const std::filesystem::path&)> damage;
    const char* reason;
  };
  const Case cases[] = {
      {"truncated",
       [](const std::filesystem::path& dir) {
         std::filesystem::resize_file(dir / "model.bin", 1000);
       },
       "model.bin: the file declares 200 variables"},
      {"no_vocabulary",
       [](const std::filesystem::path& dir) {
         std::filesystem::remove(dir / "target_vocabulary.txt");
       },
       "no target vocabulary"},
      {"bad_config",
       [](const std::filesystem::path& dir) {
         WriteFile((dir / "config.json").string(), "{\"layer_norm_epsilon\": ");
       },
       "config.json: not valid JSON"},
  };
  for (const Case& c : cases) {
    const std::filesystem::path dir = TempPath(c.name);
    std::filesystem::remove_all(dir);
    std::filesystem::copy(kModel, dir);
    c.damage(dir);
    const std::string output = TempPath(std::string(c.name) + "_output");
    const ToolRun run =
        RunTool({"--model", dir.string(), "--output", output}, absl::StrCat(kSource2, "\n"));
    EXPECT_EQ(run.exit_code, 1) << c.name;
    EXPECT_NE(run.err.find("kvmt-translate: cannot load the model: "), std::string::npos)
        << run.err;
    EXPECT_NE(run.err.find(c.reason), std::string::npos) << c.name << ": " << run.err;
    EXPECT_FALSE(std::filesystem::exists(output)) << c.name << ": output written anyway";
  }
}

TEST(KvmtTranslateTest, MissingInputFileFails) {
  const ToolRun run = RunTool({"--model", kModel, "--input", TempPath("no_such_input")});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("no_such_input"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, PrintsWhatItLoadedAndASummary) {
  const ToolRun run = RunTool({"--model", kModel, "--threads", "1"},
                              absl::StrCat(kSource1, "\n\n", kSource2, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find(kModel), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("ctranslate2"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("6 encoder + 6 decoder layers, d_model 32"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("vocabularies 51 source / 43 target"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("threads 1, beam size"), std::string::npos) << run.err;
  // Two segments of 6 and 3 tokens (plus what the model adds); 6 and 4 target tokens.
  EXPECT_NE(run.err.find("3 lines, 2 segments"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("10 target tokens"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("target tokens/s"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("peak RSS"), std::string::npos) << run.err;
}

TEST(KvmtTranslateTest, PrintsTheCacheBudgetAndWithVerboseItsAccounting) {
  // The same source twice in two batches: the second encoding comes from the source cache.
  const ToolRun run = RunTool({"--model", kModel, "--threads", "1", "--cache-memory-mb", "3",
                               "--max-batch-size", "1", "--source-cache-mb", "1", "--verbose"},
                              absl::StrCat(kSource1, "\n", kSource1, "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Blocks of 24 KiB: 6 decoder layers x (K, V) x 16 positions x d_model 32 x 4 bytes.
  EXPECT_NE(run.err.find("K/V cache pool 3.0 MiB (--cache-memory-mb)"), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("source cache up to 1.0 MiB"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("source cache 1 entries"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("1 hits, 1 misses (hit rate 50.0%)"), std::string::npos) << run.err;

  const ToolRun quiet = RunTool({"--model", kModel, "--threads", "1"}, "");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_NE(quiet.err.find("(default for this model)"), std::string::npos) << quiet.err;
  EXPECT_EQ(quiet.err.find("hit rate"), std::string::npos) << quiet.err;
}

TEST(KvmtTranslateTest, RejectsCacheBudgetsOutOfRange) {
  for (const char* flag : {"--cache-memory-mb=-1", "--source-cache-mb=-2"}) {
    const ToolRun run = RunTool({"--model", kModel, flag}, "");
    EXPECT_NE(run.exit_code, 0) << flag;
    EXPECT_NE(run.err.find(std::string(flag).substr(0, std::string(flag).find('='))),
              std::string::npos)
        << run.err;
  }
}

TEST(KvmtTranslateTest, ASegmentLargerThanThePoolFailsNamingTheLimit) {
  // 1 MiB holds 42 blocks of 16 positions; 4 beams of 256 target tokens need 64 and more.
  const ToolRun run =
      RunTool({"--model", kModel, "--threads", "1", "--cache-memory-mb", "1", "--beam-size", "4",
               "--min-decoding-length", "250", "--max-decoding-length", "256"},
              absl::StrCat(kSource1, "\n"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("cache"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "") << "nothing is written for a line that failed";
}

TEST(KvmtTranslateTest, HelpListsKebabCaseFlags) {
  const ToolRun run = RunTool({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("--beam-size"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("--no-cache"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("--beam_size"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace kvmt
