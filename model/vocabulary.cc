#include "model/vocabulary.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"
#include "model/file_io.h"
#include "nlohmann/json.hpp"

namespace kvmt {
namespace {

// CTranslate2's text format: one token per line. A token may end with a carriage return; the
// carriage returns are only line-ending noise (and dropped) when every line has one.
std::vector<std::string> TokensFromText(absl::string_view text) {
  std::vector<std::string> tokens;
  if (text.empty()) return tokens;
  if (text.back() == '\n') text.remove_suffix(1);
  for (absl::string_view line : absl::StrSplit(text, '\n')) tokens.emplace_back(line);
  bool every_line_has_cr = true;
  for (const std::string& token : tokens) {
    if (token.empty() || token.back() != '\r') {
      every_line_has_cr = false;
      break;
    }
  }
  if (every_line_has_cr) {
    for (std::string& token : tokens) token.pop_back();
  }
  return tokens;
}

absl::StatusOr<std::vector<std::string>> TokensFromJson(const std::string& text,
                                                        const std::string& path) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  if (!json.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a JSON array of token strings, got ", json.type_name()));
  }
  std::vector<std::string> tokens;
  tokens.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    if (!json[i].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry ", i, " is a ", json[i].type_name(), ", not a string"));
    }
    tokens.push_back(json[i].get<std::string>());
  }
  return tokens;
}

}  // namespace

absl::StatusOr<Vocabulary> Vocabulary::FromTokens(std::vector<std::string> tokens,
                                                  std::string_view source_name) {
  const absl::string_view source(source_name.data(), source_name.size());
  Vocabulary vocabulary;
  vocabulary.ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto [it, inserted] = vocabulary.ids_.try_emplace(tokens[i], static_cast<int32_t>(i));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": token '", tokens[i], "' appears twice (ids ", it->second, " and ", i, ")"));
    }
  }
  vocabulary.tokens_ = std::move(tokens);
  return vocabulary;
}

int32_t Vocabulary::Id(std::string_view token) const {
  const auto it = ids_.find(absl::string_view(token.data(), token.size()));
  return it == ids_.end() ? -1 : it->second;
}

absl::StatusOr<Vocabulary> ReadVocabularyFile(const std::string& path) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension != ".txt" && extension != ".json") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unknown vocabulary format '", extension,
                                                   "' (expected .txt or .json)"));
  }
  KVMT_ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(path));

  std::vector<std::string> tokens;
  if (extension == ".json") {
    auto parsed = TokensFromJson(text, path);
    if (!parsed.ok()) return parsed.status();
    tokens = *std::move(parsed);
  } else {
    tokens = TokensFromText(text);
  }
  return Vocabulary::FromTokens(std::move(tokens), path);
}

}  // namespace kvmt
