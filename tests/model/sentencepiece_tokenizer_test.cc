#include "model/sentencepiece_tokenizer.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/reference/cached_generation.h"

namespace kvmt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// One generated Marian directory (its source.spm and target.spm were trained by Python's
// sentencepiece), and what Python's sentencepiece made of a few texts with them.
class SentencePieceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::string> generated =
        testing::CachedGeneration("sentencepiece_tokenizer_test", [](const std::string& out) {
          return absl::StrCat(
              KVMT_PYTHON, " ", KVMT_SOURCE_DIR, "/tests/reference/make_marian_model.py ", out,
              "/model --seed 3 --eos-step 0 --source-text ", KVMT_SHARED_DIR,
              "/testsets/flores200.devtest.eng_Latn --target-text ", KVMT_SHARED_DIR,
              "/testsets/flores200.devtest.deu_Latn --dump ", out, "/dump.json");
        });
    ASSERT_TRUE(generated.ok()) << generated.status();
    generated_ = new std::filesystem::path(*generated);
    std::ifstream in(*generated_ / "dump.json");
    samples_ = new nlohmann::json(nlohmann::json::parse(in)["spm_samples"]);
    std::string pattern = (std::filesystem::temp_directory_path() / "kvmt_spm_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = new std::filesystem::path(pattern);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete generated_;
    delete samples_;
  }

  static std::string ModelFile(const std::string& name) {
    return (*generated_ / "model" / name).string();
  }

  static std::filesystem::path* generated_;  // Shared, read only.
  static std::filesystem::path* dir_;        // This process's scratch files.
  static nlohmann::json* samples_;
};

std::filesystem::path* SentencePieceTokenizerTest::generated_ = nullptr;
std::filesystem::path* SentencePieceTokenizerTest::dir_ = nullptr;
nlohmann::json* SentencePieceTokenizerTest::samples_ = nullptr;

TEST_F(SentencePieceTokenizerTest, EncodesAndDecodesLikePythonSentencePiece) {
  for (const char* name : {"source.spm", "target.spm"}) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        LoadSentencePieceTokenizer(ModelFile(name));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    ASSERT_GE((*samples_)[name].size(), 3u);
    for (const nlohmann::json& sample : (*samples_)[name]) {
      const std::string text = sample["text"];
      absl::StatusOr<std::vector<std::string>> pieces = (*tokenizer)->Encode(text);
      ASSERT_TRUE(pieces.ok()) << pieces.status();
      EXPECT_EQ(*pieces, sample["pieces"].get<std::vector<std::string>>()) << name << ": " << text;
      absl::StatusOr<std::string> decoded = (*tokenizer)->Decode(*pieces);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, sample["decoded"].get<std::string>()) << name << ": " << text;
    }
  }
}

TEST_F(SentencePieceTokenizerTest, DecodeDropsControlAndUnknownPieces) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadSentencePieceTokenizer(ModelFile("target.spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json& sample = (*samples_)["target.spm"][2];
  std::vector<std::string> pieces = sample["pieces"];
  ASSERT_GE(pieces.size(), 3u);
  pieces.insert(pieces.begin() + 2, "<unk>");
  pieces.insert(pieces.begin(), "<s>");
  pieces.push_back("</s>");
  absl::StatusOr<std::string> text = (*tokenizer)->Decode(pieces);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, sample["decoded"].get<std::string>());
}

// Like SentencePiece itself (and so HuggingFace): a piece outside the model is written as is.
TEST_F(SentencePieceTokenizerTest, KeepsPiecesTheModelDoesNotKnow) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadSentencePieceTokenizer(ModelFile("target.spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json& sample = (*samples_)["target.spm"][2];
  std::vector<std::string> pieces = sample["pieces"];
  pieces.push_back("<pad>");
  absl::StatusOr<std::string> text = (*tokenizer)->Decode(pieces);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, sample["decoded"].get<std::string>() + "<pad>");
}

TEST_F(SentencePieceTokenizerTest, EmptyInputs) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadSentencePieceTokenizer(ModelFile("source.spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  absl::StatusOr<std::vector<std::string>> pieces = (*tokenizer)->Encode("");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  EXPECT_TRUE(pieces->empty());
  absl::StatusOr<std::string> text = (*tokenizer)->Decode({});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "");
}

TEST_F(SentencePieceTokenizerTest, MissingFileIsNotFoundAndNamed) {
  const std::string path = (*dir_ / "no_such.spm").string();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadSentencePieceTokenizer(path);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

TEST_F(SentencePieceTokenizerTest, CorruptFileIsNamed) {
  const std::string path = (*dir_ / "corrupt.spm").string();
  std::ofstream(path, std::ios::binary) << "this is not a SentencePiece model \x01\x02\x03";
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadSentencePieceTokenizer(path);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), AllOf(HasSubstr(path), HasSubstr("SentencePiece")));
}

TEST_F(SentencePieceTokenizerTest, TruncatedFileIsNamed) {
  std::ifstream in(ModelFile("source.spm"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string path = (*dir_ / "truncated.spm").string();
  std::ofstream(path, std::ios::binary) << bytes.str().substr(0, bytes.str().size() / 3);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadSentencePieceTokenizer(path);
  EXPECT_FALSE(tokenizer.ok());
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

}  // namespace
}  // namespace kvmt
