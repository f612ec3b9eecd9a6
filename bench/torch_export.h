// Writes a Model's float32 weights and architecture for bench/torch_reference.py: config.json
// and model.safetensors under kvmt's own tensor names, position tables included, so that the
// PyTorch side computes exactly the function kvmt does.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "model/model.h"

namespace kvmt {

absl::Status WriteTorchReferenceModel(const Model& model, const std::string& dir);

}  // namespace kvmt
