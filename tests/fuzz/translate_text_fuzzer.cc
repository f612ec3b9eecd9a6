// Fuzz target: arbitrary bytes as the text of a translation request (invalid UTF-8, control
// characters, huge lines, Marian language codes), on a tiny CTranslate2 model (split on spaces)
// and a tiny Marian model (SentencePiece). The first byte chooses:
//   bit 0: the Marian model; bit 1: the text repeated to at least 64 KiB (a huge line);
//   bit 2: the text is also the target prefix; bit 3: the text split on spaces as tokens.
// Any outcome but a crash or a sanitizer report is fine; errors must be statuses.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_split.h"
#include "model/ctranslate2_reader.h"
#include "model/marian_reader.h"
#include "tests/fuzz/fuzz_support.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

std::unique_ptr<Translator> Load(absl::StatusOr<std::unique_ptr<Model>> loaded) {
  if (!loaded.ok()) {
    std::fprintf(stderr, "the fixture model does not load: %s\n",
                 loaded.status().ToString().c_str());
    std::abort();
  }
  TranslatorOptions options;
  options.threads = 1;
  options.cache_memory_bytes = int64_t{16} << 20;
  return std::move(*Translator::Create(std::shared_ptr<const Model>(*std::move(loaded)), options));
}

}  // namespace
}  // namespace kvmt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  if (size == 0) return 0;
  static const std::unique_ptr<Translator> ctranslate2 =
      Load(LoadCTranslate2Model(fuzz::TinyCTranslate2Dir("translate_ct2").string()));
  static const std::unique_ptr<Translator> marian = Load(
      LoadMarianModel(fuzz::TinyMarianDir("translate_marian", {.max_positions = 256}).string()));
  const uint8_t flags = data[0];
  std::string text(fuzz::Bytes(data + 1, size - 1));
  if ((flags & 2) != 0 && !text.empty()) {
    const std::string unit = text;
    while (text.size() < (size_t{64} << 10)) text += unit;
  }
  v1::TranslateRequest request;
  v1::Segment* segment = request.add_segments();
  if ((flags & 8) != 0) {
    for (absl::string_view token : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
      segment->add_tokens(std::string(token));
    }
  } else {
    segment->set_text(text);
  }
  if ((flags & 4) != 0) segment->set_target_prefix(text);
  request.mutable_options()->set_beam_size(2);
  request.mutable_options()->set_num_hypotheses(2);
  request.mutable_options()->set_max_decoding_length(6);
  // Huge lines are still tokenised whole; a short encoder pass keeps the fuzzer fast.
  request.mutable_options()->set_max_input_length(200);
  const Translator& translator = (flags & 1) != 0 ? *marian : *ctranslate2;
  (void)translator.Translate(request);
  return 0;
}
