// Linear: y[m, n] = act(x[m, k] · W[n, k]^T + b[n]), the product behind every projection, behind
// one interface whatever the arithmetic (float32, int8, bfloat16), so layers need not care.
// Implementations run oneDNN matmul primitives built once per layer and are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/activation.h"
#include "core/compute_type.h"
#include "core/quantized_matrix.h"
#include "core/tensor.h"

namespace kvmt {

// What a linear layer is made of. Exactly one of `weight` ([n, k] float32) and `quantized`
// ([n, k] int8 + per-row scales) is set; bias is [n] or empty. `activation` is applied to the
// output inside the layer (fused into the matmul or its rescaling pass).
struct LinearParameters {
  Tensor weight;
  QuantizedMatrix quantized;
  Tensor bias;
  std::optional<Activation> activation;
};

class Linear {
 public:
  virtual ~Linear() = default;
  // x: m rows of in_features(); y: m rows of out_features(); contiguous, not overlapping.
  virtual void Forward(const float* x, int64_t m, float* y) const = 0;
  virtual ComputeType compute_type() const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
};

// Builds the layer for `type`: float32 weights are quantised (int8) or rounded (bfloat16) here,
// int8 weights are used as they are for int8 and dequantised otherwise. Errors name the shape.
absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const LinearParameters& parameters,
                                                   ComputeType type);

}  // namespace kvmt
