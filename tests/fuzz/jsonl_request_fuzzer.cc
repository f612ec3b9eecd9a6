// Fuzz target: bytes as one input line of kvmt-translate --jsonl (tools/translate/jsonl_format),
// parsed with the command line's defaults into a TranslateRequest, translated by a tiny
// CTranslate2 model as kvmt-translate's local backend does, and the response written back as
// JSON. The reader is what is fuzzed: the translation's work is bounded (segments, beam, length)
// so that a line asking for minutes of decoding is not reported as a hang.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model/ctranslate2_reader.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/translate/jsonl_format.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

std::unique_ptr<Translator> TinyTranslator(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir);
  if (!model.ok()) {
    std::fprintf(stderr, "the fixture model does not load: %s\n",
                 model.status().ToString().c_str());
    std::abort();
  }
  TranslatorOptions options;
  options.threads = 1;
  options.cache_memory_bytes = int64_t{16} << 20;
  return std::move(*Translator::Create(std::shared_ptr<const Model>(*std::move(model)), options));
}

JsonlFormat MakeFormat(const std::string& dir) {
  v1::DecodingOptions defaults;  // As from kvmt-translate's flags.
  defaults.set_beam_size(2);
  defaults.set_max_decoding_length(8);
  return JsonlFormat(defaults, {"translate_jsonl", dir});
}

void Bound(v1::TranslateRequest& request) {
  while (request.segments_size() > 8) request.mutable_segments()->RemoveLast();
  v1::DecodingOptions& options = *request.mutable_options();
  options.set_beam_size(std::min(options.beam_size(), 4u));
  options.set_num_hypotheses(std::min(options.num_hypotheses(), 4u));
  if (options.max_decoding_length() == 0 || options.max_decoding_length() > 16) {
    options.set_max_decoding_length(16);
  }
}

}  // namespace
}  // namespace kvmt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmt;
  static const std::string dir = fuzz::TinyCTranslate2Dir("translate_jsonl").string();
  static const std::unique_ptr<Translator> translator = TinyTranslator(dir);
  static const JsonlFormat format = MakeFormat(dir);
  absl::StatusOr<ParsedLine> parsed = format.Parse(fuzz::Bytes(data, size));
  if (!parsed.ok() || parsed->request.segments().empty()) return 0;
  Bound(parsed->request);
  absl::StatusOr<v1::TranslateResponse> response = translator->Translate(parsed->request);
  if (response.ok()) (void)format.Format(*parsed, *response);
  return 0;
}
