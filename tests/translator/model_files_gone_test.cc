// A loaded model no longer depends on its files: after every file of the model directory is
// overwritten in place, truncated and deleted, translations are exactly what they were. A reader
// that kept the files mapped and read weights, vocabularies or SentencePiece models lazily would
// see the garbage (a private mapping shows writes to pages it has not copied) or die of SIGBUS
// past the truncated end.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/model/marian_tiny_model.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

namespace fs = std::filesystem;

fs::path NewDir(const std::string& name) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / absl::StrCat("kvmt_files_gone_", getpid(), "_", name);
  fs::remove_all(dir);
  return dir;
}

// Every file under `dir` overwritten with other bytes in place (same inode), then truncated to
// nothing; then the directory is deleted.
void DestroyInPlace(const fs::path& dir) {
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const uintmax_t size = entry.file_size();
    {
      std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      ASSERT_TRUE(file) << entry.path();
      const std::string garbage(size, '\xa5');
      file.write(garbage.data(), static_cast<std::streamsize>(size));
      ASSERT_TRUE(file.flush()) << entry.path();
    }
    fs::resize_file(entry.path(), 0);
  }
  fs::remove_all(dir);
  ASSERT_FALSE(fs::exists(dir));
}

std::vector<std::string> Translate(const Translator& translator,
                                   const std::vector<std::string>& texts) {
  v1::TranslateRequest request;
  for (const std::string& text : texts) request.add_segments()->set_text(text);
  request.mutable_options()->set_beam_size(2);
  request.mutable_options()->set_num_hypotheses(2);
  request.mutable_options()->set_return_scores(true);
  absl::StatusOr<v1::TranslateResponse> response = translator.Translate(request);
  EXPECT_TRUE(response.ok()) << response.status();
  std::vector<std::string> results;
  if (!response.ok()) return results;
  for (const v1::SegmentResult& result : response->results()) {
    results.push_back(result.SerializeAsString());
  }
  return results;
}

// Loads `dir`, translates `texts`, destroys the directory and translates again, with the same
// Translator and with a new one over the same loaded model.
void ExpectUnaffectedByTheFilesGoing(const fs::path& dir, const std::vector<std::string>& texts) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::shared_ptr<const Model> model = *std::move(loaded);
  TranslatorOptions options;
  options.threads = 1;
  options.source_cache_bytes = 0;  // Nothing may be remembered from the first translation.
  absl::StatusOr<std::unique_ptr<Translator>> translator = Translator::Create(model, options);
  ASSERT_TRUE(translator.ok()) << translator.status();
  const std::vector<std::string> before = Translate(**translator, texts);
  ASSERT_EQ(before.size(), texts.size());

  DestroyInPlace(dir);

  EXPECT_EQ(Translate(**translator, texts), before);
  absl::StatusOr<std::unique_ptr<Translator>> fresh = Translator::Create(model, options);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(Translate(**fresh, texts), before);
}

TEST(ModelFilesGoneTest, CTranslate2ModelsTranslateAsBefore) {
  for (const char* name : {"ct2-v2-aren-transliteration", "ct2-v2-aren-transliteration-i8"}) {
    SCOPED_TRACE(name);
    const fs::path dir = NewDir(name);
    fs::copy(fs::path(KVMT_SHARED_DIR) / "models" / name, dir);
    ExpectUnaffectedByTheFilesGoing(dir, {"آ ت ز م و ن", "آ ز ا"});
  }
}

TEST(ModelFilesGoneTest, MarianModelWithSentencePieceTranslatesAsBefore) {
  const fs::path dir = NewDir("marian");
  testing::WriteTinyMarianModel(dir);
  ExpectUnaffectedByTheFilesGoing(dir, {">>deu<< the cat sat on the mat", "ein kleiner Hund"});
}

}  // namespace
}  // namespace kvmt
