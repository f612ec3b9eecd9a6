// Activation functions of the feed-forward sub-layers.
#pragma once

#include <cstdint>

namespace kvmt {

enum class Activation { kRelu, kGelu, kGeluTanh, kSwish };

// x <- f(x), element-wise over n values.
void ApplyActivation(Activation activation, float* x, int64_t n);

}  // namespace kvmt
