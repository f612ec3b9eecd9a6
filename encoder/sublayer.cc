#include "encoder/sublayer.h"

#include "core/ops.h"

namespace kvmt {

absl::StatusOr<std::unique_ptr<Linear>> MakeLayerLinear(const LinearWeights& weights,
                                                        ComputeType type,
                                                        std::optional<Activation> activation) {
  return MakeLinear(LinearParameters{weights.weight, weights.quantized, weights.bias, activation},
                    type);
}

const float* SublayerInput(const ModelConfig& config, const LayerNormWeights& norm, const float* x,
                           int64_t rows, float* normed) {
  if (!config.pre_norm) return x;
  LayerNorm(x, rows, config.d_model, norm.gamma, norm.beta, config.layer_norm_epsilon, normed);
  return normed;
}

void SublayerResidual(const ModelConfig& config, const LayerNormWeights& norm, float* x,
                      const float* output, int64_t rows) {
  AddInPlace(x, output, rows * config.d_model);
  if (!config.pre_norm) {
    LayerNorm(x, rows, config.d_model, norm.gamma, norm.beta, config.layer_norm_epsilon, x);
  }
}

void FeedForwardSublayer(const ModelConfig& config, const LayerNormWeights& norm,
                         const Linear& inner, const Linear& outer, float* x, int64_t rows,
                         float* normed, float* inner_buffer, float* output) {
  const float* input = SublayerInput(config, norm, x, rows, normed);
  inner.Forward(input, rows, inner_buffer);
  outer.Forward(inner_buffer, rows, output);
  SublayerResidual(config, norm, x, output, rows);
}

void FinalNorm(const ModelConfig& config, const LayerNormWeights& norm, float* x, int64_t rows) {
  if (norm.gamma.empty()) return;
  LayerNorm(x, rows, config.d_model, norm.gamma, norm.beta, config.layer_norm_epsilon, x);
}

}  // namespace kvmt
