#include "tests/fuzz/fuzz_support.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "tests/model/ct2_tiny_model.h"
#include "translator/translator.h"

namespace kvmt::fuzz {
namespace fs = std::filesystem;

namespace {

class Scratch {
 public:
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "kvmt_fuzz_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("kvmt fuzz: mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~Scratch() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

const fs::path& ScratchDir() {
  static const Scratch scratch;
  return scratch.path();
}

void WriteFile(const fs::path& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path TinyCTranslate2Dir(const std::string& name) {
  const fs::path dir = ScratchDir() / name;
  testing::TinyModelOptions options;
  options.d_model = 8;
  options.num_heads = 2;
  options.ffn_dim = 8;
  options.decoder_layers = 1;
  testing::TinyModel(options).Write(dir);
  return dir;
}

fs::path TinyMarianDir(const std::string& name, const testing::TinyMarianOptions& options) {
  const fs::path dir = ScratchDir() / name;
  testing::WriteTinyMarianModel(dir, options);
  return dir;
}

void TranslateOnce(std::unique_ptr<Model> model) {
  const bool marian = model->config.format == "marian";
  TranslatorOptions options;
  options.threads = 1;
  options.max_batch_size = 2;
  options.cache_memory_bytes = int64_t{4} << 20;
  absl::StatusOr<std::unique_ptr<Translator>> translator =
      Translator::Create(std::shared_ptr<const Model>(std::move(model)), options);
  if (!translator.ok()) {
    std::fprintf(stderr, "a loaded model has no Translator: %s\n",
                 translator.status().ToString().c_str());
    std::abort();
  }
  v1::TranslateRequest request;
  request.add_segments()->set_text(marian ? "the cat" : "a b");
  request.mutable_options()->set_beam_size(2);
  request.mutable_options()->set_max_decoding_length(4);
  // Errors are allowed (a segment longer than the model's positions, a pool too small for
  // it); crashes and sanitizer reports are what the fuzzer looks for.
  (void)(*translator)->Translate(request);
}

}  // namespace kvmt::fuzz
