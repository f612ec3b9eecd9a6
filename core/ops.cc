#include "core/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/log_softmax_top_k.h"
#include "core/parallel_for.h"

namespace kvmt {

void SetNumThreads(int threads) {
  omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
}

void LayerNorm(const float* x, int64_t rows, int64_t d, const Tensor& gamma, const Tensor& beta,
               float epsilon, float* y) {
  const float* g = gamma.data();
  const float* b = beta.data();
  ParallelFor(rows, 4 * d, [&](int64_t r) {
    const float* in = x + r * d;
    float* out = y + r * d;
    float mean = 0.0f;
    for (int64_t i = 0; i < d; ++i) mean += in[i];
    mean /= static_cast<float>(d);
    float variance = 0.0f;
    for (int64_t i = 0; i < d; ++i) {
      const float c = in[i] - mean;
      variance += c * c;
    }
    variance /= static_cast<float>(d);
    const float inv_std = 1.0f / std::sqrt(variance + epsilon);
    for (int64_t i = 0; i < d; ++i) out[i] = (in[i] - mean) * inv_std * g[i] + b[i];
  });
}

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

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
