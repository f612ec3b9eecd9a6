#include "tools/translate/local_backend.h"

#include <string>
#include <vector>

namespace kvmt {

int LocalBackend::SourceLength(const v1::Segment& segment) const {
  const Model& model = translator_.model();
  const int special = (model.config.add_source_bos ? 1 : 0) + (model.config.add_source_eos ? 1 : 0);
  if (!segment.tokens().empty()) return segment.tokens_size() + special;
  absl::StatusOr<std::vector<std::string>> pieces = model.source_tokenizer->Encode(segment.text());
  // A text the tokenizer rejects fails in Translate, which says why; its bytes are a fair guess.
  if (!pieces.ok()) return static_cast<int>(segment.text().size()) + special;
  return static_cast<int>(pieces->size()) + special;
}

}  // namespace kvmt
