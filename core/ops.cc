#include "core/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/log_softmax_top_k.h"
#include "core/parallel_for.h"
#include "core/vectorize.h"

namespace kvmt {

void SetNumThreads(int threads) {
  omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
}

namespace {

KVMT_VECTORIZED void LayerNormRow(const float* in, int64_t d, const float* g, const float* b,
                                  float epsilon, float* out) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < d; ++i) sum += in[i];
  const float mean = sum / static_cast<float>(d);
  float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (int64_t i = 0; i < d; ++i) squares += (in[i] - mean) * (in[i] - mean);
  const float inv_std = 1.0f / std::sqrt(squares / static_cast<float>(d) + epsilon);
#pragma omp simd
  for (int64_t i = 0; i < d; ++i) out[i] = (in[i] - mean) * inv_std * g[i] + b[i];
}

KVMT_VECTORIZED void AddRow(float* y, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

void LayerNorm(const float* x, int64_t rows, int64_t d, const Tensor& gamma, const Tensor& beta,
               float epsilon, float* y) {
  ParallelFor(rows, 4 * d, [&](int64_t r) {
    LayerNormRow(x + r * d, d, gamma.data(), beta.data(), epsilon, y + r * d);
  });
}

void AddInPlace(float* y, const float* x, int64_t n) { AddRow(y, x, n); }

void LogSoftmax(const float* x, int64_t n, float* y) {
  int found = 0;
  const float log_normaliser = LogSumExpTopK(x, n, {}, 0, nullptr, &found);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] - log_normaliser;
}

void EmbedTokens(const Tensor& table, absl::Span<const int32_t> ids, float scale,
                 const Tensor& positions, absl::Span<const int32_t> position, float* out) {
  const int64_t d = table.dim(1);
  const int64_t rows = static_cast<int64_t>(ids.size());
  ParallelFor(rows, d, [&](int64_t r) {
    const float* embedding = table.data() + static_cast<int64_t>(ids[r]) * d;
    const float* encoding = positions.data() + static_cast<int64_t>(position[r]) * d;
    float* row = out + r * d;
    for (int64_t i = 0; i < d; ++i) row[i] = embedding[i] * scale + encoding[i];
  });
}

}  // namespace kvmt
