#include "model/tokenizer.h"

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace kvmt {

absl::StatusOr<std::vector<std::string>> WhitespaceTokenizer::Encode(std::string_view text) const {
  std::vector<std::string> tokens = absl::StrSplit(absl::string_view(text.data(), text.size()),
                                                   absl::ByAnyChar(" \t"), absl::SkipEmpty());
  return tokens;
}

absl::StatusOr<std::string> WhitespaceTokenizer::Decode(
    const std::vector<std::string>& tokens) const {
  return absl::StrJoin(tokens, " ");
}

}  // namespace kvmt
