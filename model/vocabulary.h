// Vocabulary: token string <-> model id, in the order of the model's embedding rows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace kvmt {

class Vocabulary {
 public:
  Vocabulary() = default;
  // Fails on duplicate tokens, naming `source` (a file name) and the token.
  static absl::StatusOr<Vocabulary> FromTokens(std::vector<std::string> tokens,
                                               std::string_view source);

  // -1 when absent.
  int32_t Id(std::string_view token) const;
  const std::string& Token(int32_t id) const { return tokens_[id]; }
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  std::vector<std::string> tokens_;
  absl::flat_hash_map<std::string, int32_t> ids_;
};

// Reads a CTranslate2 vocabulary: one token per line (.txt) or a JSON array of strings (.json).
absl::StatusOr<Vocabulary> ReadVocabularyFile(const std::string& path);

}  // namespace kvmt
