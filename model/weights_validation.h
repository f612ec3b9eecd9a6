// Checks that TransformerWeights match their ModelConfig before the engine touches them, so a
// wrong shape is a clear error at load time and never an out-of-bounds read later.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

// `file` names the model file in errors; the message also names the tensor.
absl::Status ValidateWeights(const ModelConfig& config, const TransformerWeights& weights,
                             std::string_view file);

}  // namespace kvmt
