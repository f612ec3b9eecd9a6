// Shared by the fuzz targets (tests/fuzz/*_fuzzer.cc): a scratch directory per process, the small
// valid models whose one file a target replaces with the fuzzer's bytes, and one short
// translation to prove that whatever loaded also runs. Linked into the libFuzzer binaries
// (KVMT_BUILD_FUZZERS) and into the regression runners that every build has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/strings/string_view.h"
#include "model/model.h"
#include "tests/model/marian_tiny_model.h"

namespace kvmt::fuzz {

// The fuzzer's bytes.
inline absl::string_view Bytes(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// A directory of this process's own under the system temporary directory, removed at exit.
const std::filesystem::path& ScratchDir();

void WriteFile(const std::filesystem::path& path, absl::string_view bytes);

// ScratchDir()/name holding a valid tiny CTranslate2 model (binary version 6, float32, the
// vocabularies of tests/model/ct2_tiny_model.h, no config.json). Written on the first call.
std::filesystem::path TinyCTranslate2Dir(const std::string& name);

// ScratchDir()/name holding the tiny Marian model of tests/model/marian_tiny_model.h.
std::filesystem::path TinyMarianDir(const std::string& name,
                                    const testing::TinyMarianOptions& options = {});

// Translates "a b" (CTranslate2 vocabulary) or "the cat" (Marian) with a small pool and short
// hypotheses; aborts when a model that loaded cannot translate, which a fuzzer reports.
void TranslateOnce(std::unique_ptr<Model> model);

}  // namespace kvmt::fuzz
