#include "core/activation.h"

#include <algorithm>
#include <cmath>

#include "core/parallel_for.h"

namespace kvmt {
namespace {

// x[i] = f(x[i]) in chunks spread over the threads when there are enough of them.
template <typename Fn>
void Elementwise(float* x, int64_t n, Fn fn) {
  constexpr int64_t kChunk = 4096;
  ParallelFor((n + kChunk - 1) / kChunk, kChunk * 8, [&](int64_t chunk) {
    const int64_t end = std::min(n, (chunk + 1) * kChunk);
    for (int64_t i = chunk * kChunk; i < end; ++i) x[i] = fn(x[i]);
  });
}

}  // namespace

void ApplyActivation(Activation activation, float* x, int64_t n) {
  switch (activation) {
    case Activation::kRelu:
      Elementwise(x, n, [](float v) { return v > 0.0f ? v : 0.0f; });
      break;
    case Activation::kGelu:
      Elementwise(x, n, [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678f)); });
      break;
    case Activation::kGeluTanh:
      Elementwise(x, n, [](float v) {
        constexpr float kSqrt2OverPi = 0.7978845608f;
        return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
      });
      break;
    case Activation::kSwish:
      Elementwise(x, n, [](float v) { return v / (1.0f + std::exp(-v)); });
      break;
  }
}

}  // namespace kvmt
