// Fuzz target: bytes as config.json, in both formats: beside a valid CTranslate2 model.bin and
// in an otherwise valid HuggingFace Marian directory. A model that loads must translate.
#include <cstddef>
#include <cstdint>

#include "model/ctranslate2_reader.h"
#include "model/marian_reader.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  static const std::filesystem::path ctranslate2 = fuzz::TinyCTranslate2Dir("config_ct2");
  static const std::filesystem::path marian = fuzz::TinyMarianDir("config_marian");
  for (const std::filesystem::path& dir : {ctranslate2, marian}) {
    fuzz::WriteFile(dir / "config.json", fuzz::Bytes(data, size));
    absl::StatusOr<std::unique_ptr<Model>> model =
        dir == ctranslate2 ? LoadCTranslate2Model(dir.string()) : LoadMarianModel(dir.string());
    if (model.ok()) fuzz::TranslateOnce(*std::move(model));
  }
  return 0;
}
