// Linear: y[m, n] = x[m, k] · W[n, k]^T + b[n], the product behind every projection. Runs on a
// oneDNN matmul primitive created once per weight shape (rows are a runtime dimension) and reused.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kvmt {

// weight: [n, k]; bias: [n] or empty. x and y are contiguous and must not overlap.
void Linear(const float* x, int64_t m, const Tensor& weight, const Tensor& bias, float* y);

}  // namespace kvmt
