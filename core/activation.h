// Activation functions of the feed-forward sub-layers.
#pragma once

#include <cstdint>

namespace kvmt {

enum class Activation { kRelu, kGelu, kGeluTanh, kSwish };

// x <- f(x), element-wise over n values, spread over the OpenMP threads when n is large.
void ApplyActivation(Activation activation, float* x, int64_t n);

// The same on the calling thread only: for use inside a parallel loop.
void ApplyActivationSerial(Activation activation, float* x, int64_t n);

}  // namespace kvmt
