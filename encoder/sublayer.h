// The residual wiring shared by encoder and decoder layers: pre-norm normalises a sub-layer's
// input, post-norm normalises the residual sum. Keeping it in one place keeps the two stacks
// (and the cached and uncached decoders) numerically identical.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/compute_type.h"
#include "core/linear.h"
#include "model/model_config.h"
#include "model/transformer_weights.h"

namespace kvmt {

// The Linear of a layer's weights for `type`, with `activation` fused into it.
absl::StatusOr<std::unique_ptr<Linear>> MakeLayerLinear(
    const LinearWeights& weights, ComputeType type,
    std::optional<Activation> activation = std::nullopt);

// The sub-layer's input: LN(x) written to `normed` under pre-norm, else x itself.
const float* SublayerInput(const ModelConfig& config, const LayerNormWeights& norm, const float* x,
                           int64_t rows, float* normed);

// x <- x + output, then LN under post-norm.
void SublayerResidual(const ModelConfig& config, const LayerNormWeights& norm, float* x,
                      const float* output, int64_t rows);

// x <- residual around outer(inner(·)), the activation being fused into `inner`.
// `inner_buffer` holds rows * ffn_dim floats, `normed` and `output` rows * d_model each.
void FeedForwardSublayer(const ModelConfig& config, const LayerNormWeights& norm,
                         const Linear& inner, const Linear& outer, float* x, int64_t rows,
                         float* normed, float* inner_buffer, float* output);

// LN(x) in place when the model has a final norm (pre-norm stacks).
void FinalNorm(const ModelConfig& config, const LayerNormWeights& norm, float* x, int64_t rows);

}  // namespace kvmt
