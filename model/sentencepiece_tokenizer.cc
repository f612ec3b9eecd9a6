// sentencepiece_processor.h declares `namespace absl { using std::string_view; }`, which clashes
// with Debian's abseil (its absl::string_view is a class of its own). Renaming that namespace
// while the header is read keeps the two apart; the header's functions still take
// std::string_view, so they link against the library unchanged. It must come before any abseil
// header.
#define absl kvmt_sentencepiece_absl
#include <sentencepiece_processor.h>
#undef absl

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/sentencepiece_tokenizer.h"

namespace kvmt {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string path,
                         std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
      : path_(std::move(path)), processor_(std::move(processor)) {}

  absl::StatusOr<std::vector<std::string>> Encode(std::string_view text) const override {
    std::vector<std::string> pieces;
    const sentencepiece::util::Status status = processor_->Encode(text, &pieces);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat(path_, ": SentencePiece cannot encode the text: ", status.ToString()));
    }
    return pieces;
  }

  // Control pieces (<s>, </s>) and the unknown piece are dropped, like HuggingFace's decoding
  // with skip_special_tokens; any other piece the model does not know is kept as written.
  absl::StatusOr<std::string> Decode(const std::vector<std::string>& tokens) const override {
    std::vector<std::string> pieces;
    pieces.reserve(tokens.size());
    for (const std::string& token : tokens) {
      const int id = processor_->PieceToId(token);
      if (processor_->IsControl(id)) continue;
      if (processor_->IsUnknown(id) && processor_->IdToPiece(id) == token) continue;
      pieces.push_back(token);
    }
    std::string text;
    const sentencepiece::util::Status status = processor_->Decode(pieces, &text);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat(path_, ": SentencePiece cannot decode the pieces: ", status.ToString()));
    }
    return text;
  }

 private:
  const std::string path_;
  const std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->Load(path);
  if (!status.ok()) {
    const std::string message =
        absl::StrCat(path, ": cannot load the SentencePiece model: ", status.ToString());
    if (status.code() == sentencepiece::util::StatusCode::kNotFound) {
      return absl::NotFoundError(message);
    }
    return absl::InvalidArgumentError(message);
  }
  return std::unique_ptr<Tokenizer>(
      std::make_unique<SentencePieceTokenizer>(path, std::move(processor)));
}

}  // namespace kvmt
