// Fuzz target: bytes as the model.bin of an otherwise valid CTranslate2 directory. A file that
// loads must also translate.
#include <cstddef>
#include <cstdint>

#include "model/ctranslate2_reader.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  static const std::filesystem::path dir = fuzz::TinyCTranslate2Dir("ctranslate2_model");
  fuzz::WriteFile(dir / "model.bin", fuzz::Bytes(data, size));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir.string());
  if (model.ok()) fuzz::TranslateOnce(*std::move(model));
  return 0;
}
