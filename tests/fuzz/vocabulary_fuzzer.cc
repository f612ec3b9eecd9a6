// Fuzz target: bytes as a vocabulary file: CTranslate2's .txt and .json formats alone and as the
// target vocabulary of a valid CTranslate2 model (<unk> appended or not), and HuggingFace
// Marian's vocab.json in a valid Marian directory. A model that loads must translate.
#include <cstddef>
#include <cstdint>

#include "model/ctranslate2_reader.h"
#include "model/marian_reader.h"
#include "model/vocabulary.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  namespace fs = std::filesystem;
  static const fs::path alone = [] {
    fs::create_directories(fuzz::ScratchDir() / "vocabulary");
    return fuzz::ScratchDir() / "vocabulary";
  }();
  static const fs::path ctranslate2 = fuzz::TinyCTranslate2Dir("vocabulary_ct2");
  static const fs::path marian = fuzz::TinyMarianDir("vocabulary_marian");
  const absl::string_view bytes = fuzz::Bytes(data, size);
  for (const char* name : {"vocabulary.txt", "vocabulary.json"}) {
    fuzz::WriteFile(alone / name, bytes);
    (void)ReadVocabularyFile((alone / name).string());
  }
  fuzz::WriteFile(ctranslate2 / "target_vocabulary.txt", bytes);
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(ctranslate2.string());
  if (model.ok()) fuzz::TranslateOnce(*std::move(model));
  fuzz::WriteFile(marian / "vocab.json", bytes);
  model = LoadMarianModel(marian.string());
  if (model.ok()) fuzz::TranslateOnce(*std::move(model));
  return 0;
}
