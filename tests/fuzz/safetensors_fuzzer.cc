// Fuzz target: bytes as a .safetensors file, read tensor by tensor, then as the
// model.safetensors of an otherwise valid Marian directory (which must translate if it loads).
#include <cstddef>
#include <cstdint>

#include "model/marian_reader.h"
#include "model/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  static const std::filesystem::path dir = fuzz::TinyMarianDir("safetensors");
  const std::filesystem::path path = dir / "model.safetensors";
  fuzz::WriteFile(path, fuzz::Bytes(data, size));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path.string());
  if (file.ok()) {
    for (const std::string& name : file->Names()) (void)file->ReadFloat(name);
  }
  absl::StatusOr<std::unique_ptr<Model>> model = LoadMarianModel(dir.string());
  if (model.ok()) fuzz::TranslateOnce(*std::move(model));
  return 0;
}
