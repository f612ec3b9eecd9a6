#include "core/activation.h"

#include <algorithm>
#include <cmath>

#include "core/parallel_for.h"
#include "core/vectorize.h"

namespace kvmt {
namespace {

KVMT_VECTORIZED void Relu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void Gelu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678f));
}

KVMT_VECTORIZED void GeluTanh(float* x, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    // tanh(u) = 1 - 2 / (exp(2u) + 1).
    const float u = kSqrt2OverPi * (v + 0.044715f * v * v * v);
    const float tanh_u = 1.0f - 2.0f / (ExpApprox(2.0f * u) + 1.0f);
    x[i] = 0.5f * v * (1.0f + tanh_u);
  }
}

KVMT_VECTORIZED void Swish(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + ExpApprox(-x[i]));
}

}  // namespace

void ApplyActivationSerial(Activation activation, float* x, int64_t n) {
  switch (activation) {
    case Activation::kRelu:
      Relu(x, n);
      break;
    case Activation::kGelu:
      Gelu(x, n);
      break;
    case Activation::kGeluTanh:
      GeluTanh(x, n);
      break;
    case Activation::kSwish:
      Swish(x, n);
      break;
  }
}

void ApplyActivation(Activation activation, float* x, int64_t n) {
  constexpr int64_t kChunk = 4096;
  ParallelFor((n + kChunk - 1) / kChunk, kChunk * 8, [&](int64_t chunk) {
    const int64_t begin = chunk * kChunk;
    ApplyActivationSerial(activation, x + begin, std::min(n, begin + kChunk) - begin);
  });
}

}  // namespace kvmt
