#include "core/activation.h"

#include <cmath>

namespace kvmt {

void ApplyActivation(Activation activation, float* x, int64_t n) {
  switch (activation) {
    case Activation::kRelu:
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
      break;
    case Activation::kGelu:
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678f));
      break;
    case Activation::kGeluTanh: {
      constexpr float kSqrt2OverPi = 0.7978845608f;
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
      }
      break;
    }
    case Activation::kSwish:
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
      break;
  }
}

}  // namespace kvmt
