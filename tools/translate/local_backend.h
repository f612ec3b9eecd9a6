// LocalBackend: a Translator in this process as the file pipeline's TranslationBackend; source
// lengths come from the model's own tokenizer.
#pragma once

#include "tools/translate/translation_backend.h"
#include "translator/translator.h"

namespace kvmt {

class LocalBackend : public TranslationBackend {
 public:
  explicit LocalBackend(const Translator& translator) : translator_(translator) {}

  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) override {
    return translator_.Translate(request);
  }
  int SourceLength(const v1::Segment& segment) const override;

 private:
  const Translator& translator_;
};

}  // namespace kvmt
