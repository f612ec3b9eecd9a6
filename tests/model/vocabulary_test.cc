// Vocabulary files (CTranslate2's .txt and .json) and the WhitespaceTokenizer.
#include "model/vocabulary.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer.h"

namespace kvmt {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& bytes) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("kvmt_vocab_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path.string();
}

std::vector<std::string> Tokens(const std::string& name, const std::string& bytes) {
  absl::StatusOr<Vocabulary> vocabulary = ReadVocabularyFile(WriteFile(name, bytes));
  EXPECT_TRUE(vocabulary.ok()) << vocabulary.status();
  return vocabulary.ok() ? vocabulary->tokens() : std::vector<std::string>{"<failed>"};
}

TEST(Vocabulary, MapsTokensToIdsBothWays) {
  absl::StatusOr<Vocabulary> vocabulary = Vocabulary::FromTokens({"<s>", "</s>", "a"}, "test");
  ASSERT_TRUE(vocabulary.ok()) << vocabulary.status();
  EXPECT_EQ(vocabulary->size(), 3);
  EXPECT_EQ(vocabulary->Id("a"), 2);
  EXPECT_EQ(vocabulary->Id("</s>"), 1);
  EXPECT_EQ(vocabulary->Id("b"), -1);
  EXPECT_EQ(vocabulary->Id(""), -1);
  EXPECT_EQ(vocabulary->Token(0), "<s>");
}

TEST(Vocabulary, RejectsDuplicates) {
  const absl::Status status = Vocabulary::FromTokens({"a", "b", "a"}, "my.txt").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.ToString(),
              AllOf(HasSubstr("my.txt"), HasSubstr("'a'"), HasSubstr("0"), HasSubstr("2")));
}

TEST(ReadVocabularyFile, ReadsOneTokenPerLine) {
  EXPECT_THAT(Tokens("a.txt", "<s>\n</s>\nhello\n"), ElementsAre("<s>", "</s>", "hello"));
  EXPECT_THAT(Tokens("b.txt", "x\ny"), ElementsAre("x", "y"));          // No final newline.
  EXPECT_THAT(Tokens("c.txt", "x\n\ny\n"), ElementsAre("x", "", "y"));  // An empty token.
  EXPECT_THAT(Tokens("d.txt", " a \n\tb\n"), ElementsAre(" a ", "\tb"));
  EXPECT_THAT(Tokens("e.txt", ""), ElementsAre());
}

TEST(ReadVocabularyFile, DropsCarriageReturnsOnlyWhenEveryLineHasOne) {
  EXPECT_THAT(Tokens("crlf.txt", "a\r\nb\r\nc\r\n"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Tokens("mixed.txt", "a\r\nb\nc\r\n"), ElementsAre("a\r", "b", "c\r"));
}

TEST(ReadVocabularyFile, ReadsAJsonArray) {
  EXPECT_THAT(Tokens("v.json", R"(["<s>", "a\nb", "\u00e9", ""])"),
              ElementsAre("<s>", "a\nb", "\xC3\xA9", ""));
}

TEST(ReadVocabularyFile, ReportsBadFiles) {
  absl::Status status = ReadVocabularyFile(WriteFile("bad.json", "[\"a\", 3]")).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("bad.json"), HasSubstr("entry 1")));
  status = ReadVocabularyFile(WriteFile("obj.json", "{\"a\": 0}")).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("obj.json"), HasSubstr("array")));
  status = ReadVocabularyFile(WriteFile("broken.json", "[\"a\"")).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("broken.json"), HasSubstr("not valid JSON")));
  status = ReadVocabularyFile(WriteFile("dup.txt", "a\nb\na\n")).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("dup.txt"), HasSubstr("'a' appears twice")));
  status = ReadVocabularyFile(WriteFile("vocab.yml", "a\n")).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("vocab.yml"), HasSubstr(".txt or .json")));
  status = ReadVocabularyFile((fs::path(::testing::TempDir()) / "absent_vocabulary.txt").string())
               .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.ToString(), HasSubstr("absent_vocabulary.txt"));
}

TEST(WhitespaceTokenizer, SplitsOnRunsOfSpacesAndTabs) {
  const WhitespaceTokenizer tokenizer;
  absl::StatusOr<std::vector<std::string>> tokens = tokenizer.Encode("  a \t b\tc  ");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, ElementsAre("a", "b", "c"));
  tokens = tokenizer.Encode("آ ت ز");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, ElementsAre("آ", "ت", "ز"));
  tokens = tokenizer.Encode(" \t ");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, ElementsAre());
}

TEST(WhitespaceTokenizer, JoinsWithOneSpace) {
  const WhitespaceTokenizer tokenizer;
  absl::StatusOr<std::string> text = tokenizer.Decode({"a", "t", "z"});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "a t z");
  text = tokenizer.Decode({});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "");
}

}  // namespace
}  // namespace kvmt
