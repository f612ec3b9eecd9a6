// Reads a HuggingFace Marian / OPUS-MT directory: config.json, model.safetensors, vocab.json
// (and target_vocab.json when the vocabularies are separate), source.spm and target.spm.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace kvmt {

absl::StatusOr<std::unique_ptr<Model>> LoadMarianModel(const std::string& dir);

}  // namespace kvmt
