// Tokenizer: text <-> token strings (the strings a Vocabulary maps to ids).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kvmt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual absl::StatusOr<std::vector<std::string>> Encode(std::string_view text) const = 0;
  virtual absl::StatusOr<std::string> Decode(const std::vector<std::string>& tokens) const = 0;
};

// For pre-tokenised models: splits on runs of ASCII spaces and tabs, joins with one space.
class WhitespaceTokenizer : public Tokenizer {
 public:
  absl::StatusOr<std::vector<std::string>> Encode(std::string_view text) const override;
  absl::StatusOr<std::string> Decode(const std::vector<std::string>& tokens) const override;
};

}  // namespace kvmt
