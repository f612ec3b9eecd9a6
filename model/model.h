// Model: a loaded translation model — config, weights, vocabularies and tokenizers.
// LoadModel picks the reader from what the directory holds.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/transformer_weights.h"
#include "model/vocabulary.h"

namespace kvmt {

struct Model {
  std::string path;
  ModelConfig config;
  TransformerWeights weights;
  Vocabulary source_vocabulary;
  Vocabulary target_vocabulary;
  // Never null: SentencePiece when the model ships one, else WhitespaceTokenizer.
  std::unique_ptr<Tokenizer> source_tokenizer;
  std::unique_ptr<Tokenizer> target_tokenizer;
  bool has_sentencepiece = false;
};

// Loads `dir`: a CTranslate2 directory (model.bin) or a HuggingFace Marian directory
// (config.json + model.safetensors). Errors name the file and, where one is at fault, the
// variable or field.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir);

}  // namespace kvmt
