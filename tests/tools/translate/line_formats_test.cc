// The plain, TSV and JSONL line formats: requests from lines, output lines from results; and
// FormatSegmentResult, the hypotheses line they share with kvmt-client.
#include <string>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tools/segment_format.h"
#include "tools/translate/jsonl_format.h"
#include "tools/translate/plain_format.h"
#include "tools/translate/tsv_format.h"

namespace kvmt {
namespace {

v1::SegmentResult Result(const std::vector<std::string>& texts) {
  v1::SegmentResult result;
  float score = -1;
  for (const std::string& text : texts) {
    v1::Hypothesis* hypothesis = result.add_hypotheses();
    hypothesis->set_text(text);
    hypothesis->set_score(score);
    score *= 2;
    for (char c : text) {
      if (c != ' ') hypothesis->add_tokens(std::string(1, c));
    }
  }
  return result;
}

v1::TranslateResponse Response(const std::vector<v1::SegmentResult>& results) {
  v1::TranslateResponse response;
  for (const v1::SegmentResult& result : results) *response.add_results() = result;
  return response;
}

v1::DecodingOptions Options(uint32_t beam_size, bool return_scores = false) {
  v1::DecodingOptions options;
  options.set_beam_size(beam_size);
  options.set_return_scores(return_scores);
  return options;
}

TEST(FormatSegmentResultTest, JoinsHypothesesBestFirstWithScoresAndNoLineBreaks) {
  const v1::SegmentResult result = Result({"a b", "c\nd"});
  EXPECT_EQ(FormatSegmentResult(result, false, false), "a b ||| c d");
  EXPECT_EQ(FormatSegmentResult(result, true, false), "a b ||| c   d");
  EXPECT_EQ(FormatSegmentResult(result, false, true), "-1\ta b ||| -2\tc d");
}

TEST(PlainFormatTest, ALineIsOneSegmentWithTheFlagsOptions) {
  const PlainFormat text(Options(3), false);
  absl::StatusOr<ParsedLine> parsed = text.Parse("x  y\tz");
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->request.segments_size(), 1);
  EXPECT_EQ(parsed->request.segments(0).text(), "x  y\tz");
  EXPECT_EQ(parsed->request.options().beam_size(), 3u);

  const PlainFormat tokens(Options(3), true);
  parsed = tokens.Parse(" x  y\tz ");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::vector<std::string>(parsed->request.segments(0).tokens().begin(),
                                     parsed->request.segments(0).tokens().end()),
            (std::vector<std::string>{"x", "y", "z"}));

  absl::StatusOr<std::string> line = text.Format(*parsed, Response({Result({"out put"})}));
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(*line, "out put");
  EXPECT_FALSE(text.Format(*parsed, Response({})).ok());
}

TEST(TsvFormatTest, TranslatesOneColumnAndKeepsTheOthers) {
  const TsvFormat tsv(Options(0), false, 2);
  absl::StatusOr<ParsedLine> parsed = tsv.Parse("id7\tsource text\tnote");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->request.segments_size(), 1);
  EXPECT_EQ(parsed->request.segments(0).text(), "source text");
  absl::StatusOr<std::string> line = tsv.Format(*parsed, Response({Result({"tar\tget"})}));
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(*line, "id7\ttar get\tnote");  // A tab in the translation would shift the columns.
}

TEST(TsvFormatTest, TheLastColumnAndAnEmptyColumn) {
  const TsvFormat last(Options(0), false, 3);
  absl::StatusOr<ParsedLine> parsed = last.Parse("a\tb\tc");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*last.Format(*parsed, Response({Result({"C"})})), "a\tb\tC");

  parsed = last.Parse("a\tb\t");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->request.segments_size(), 0);  // Nothing to translate.
  EXPECT_EQ(*last.Format(*parsed, Response({})), "a\tb\t");
}

TEST(TsvFormatTest, TooFewColumnsIsAnError) {
  const TsvFormat tsv(Options(0), false, 3);
  absl::StatusOr<ParsedLine> parsed = tsv.Parse("a\tb");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("2 tab-separated columns; --column is 3"),
            std::string::npos)
      << parsed.status();
}

TEST(JsonlFormatTest, RequestOptionsOverrideTheDefaultsFieldByField) {
  v1::DecodingOptions defaults = Options(5, true);
  defaults.set_max_decoding_length(20);
  const JsonlFormat jsonl(defaults, {"name", "/models/name"});
  absl::StatusOr<ParsedLine> parsed = jsonl.Parse(
      R"({"model":"name","segments":[{"text":"a"},{"tokens":["b","c"]}],"options":{"beamSize":2}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request.segments_size(), 2);
  EXPECT_EQ(parsed->request.options().beam_size(), 2u);
  EXPECT_EQ(parsed->request.options().max_decoding_length(), 20u);
  EXPECT_TRUE(parsed->request.options().return_scores());
  EXPECT_TRUE(jsonl.Parse(R"({"model":"/models/name","segments":[{"text":"a"}]})").ok());

  absl::StatusOr<std::string> line =
      jsonl.Format(*parsed, Response({Result({"x"}), Result({"y z"})}));
  ASSERT_TRUE(line.ok());
  v1::TranslateResponse back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &back).ok()) << *line;
  ASSERT_EQ(back.results_size(), 2);
  EXPECT_EQ(back.results(1).hypotheses(0).text(), "y z");
}

TEST(JsonlFormatTest, MalformedRequestsAreErrors) {
  const JsonlFormat jsonl(Options(0), {"name"});
  for (const char* line : {R"({"segments": [)", R"({"segmets":[]})", R"({"segments":[]})",
                           R"({"model":"other","segments":[{"text":"a"}]})"}) {
    absl::StatusOr<ParsedLine> parsed = jsonl.Parse(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
  EXPECT_NE(jsonl.Parse(R"({"model":"other","segments":[{"text":"a"}]})")
                .status()
                .message()
                .find("'other' is not the loaded one ('name')"),
            std::string::npos);
}

}  // namespace
}  // namespace kvmt
