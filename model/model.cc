#include "model/model.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "model/ctranslate2_reader.h"
#include "model/marian_reader.h"

namespace kvmt {

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  }
  const fs::path path(dir);
  if (fs::exists(path / "model.bin", error)) return LoadCTranslate2Model(dir);
  if (fs::exists(path / "config.json", error) && fs::exists(path / "model.safetensors", error)) {
    return LoadMarianModel(dir);
  }
  return absl::NotFoundError(
      absl::StrCat(dir,
                   ": no model found: looked for model.bin (CTranslate2) and for "
                   "config.json with model.safetensors (HuggingFace Marian)"));
}

}  // namespace kvmt
