// SentencePieceTokenizer: a Tokenizer over a SentencePiece model file. The only place that
// includes sentencepiece_processor.h (it clashes with Debian's abseil; see docs/DEPENDENCIES.md).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/tokenizer.h"

namespace kvmt {

// Loads `path` (a .spm / sentencepiece.model file); the error names the file.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path);

}  // namespace kvmt
