#include "core/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel_for.h"

namespace kvmt {

void AttendQuery(const float* q, absl::Span<const KeyValueRows> runs, AttentionShape shape,
                 float* scores, float* out) {
  const int hd = shape.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int h = 0; h < shape.num_heads; ++h) {
    const float* qh = q + h * hd;
    float max_score = -std::numeric_limits<float>::infinity();
    int64_t index = 0;
    for (const KeyValueRows& run : runs) {
      const float* key = run.keys + h * hd;
      for (int64_t r = 0; r < run.rows; ++r, key += run.row_stride) {
        float dot = 0.0f;
        for (int i = 0; i < hd; ++i) dot += qh[i] * key[i];
        dot *= scale;
        scores[index++] = dot;
        max_score = std::max(max_score, dot);
      }
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < index; ++i) {
      scores[i] = std::exp(scores[i] - max_score);
      sum += scores[i];
    }
    const float inv_sum = 1.0f / sum;
    float* oh = out + h * hd;
    for (int i = 0; i < hd; ++i) oh[i] = 0.0f;
    index = 0;
    for (const KeyValueRows& run : runs) {
      const float* value = run.values + h * hd;
      for (int64_t r = 0; r < run.rows; ++r, value += run.row_stride) {
        const float weight = scores[index++] * inv_sum;
        for (int i = 0; i < hd; ++i) oh[i] += weight * value[i];
      }
    }
  }
}

void SequenceAttention(const float* q, int64_t q_stride, const float* k, const float* v,
                       int64_t kv_stride, int batch, int64_t q_rows, int64_t kv_rows,
                       absl::Span<const int32_t> key_lengths, bool causal, AttentionShape shape,
                       float* out, int64_t out_stride) {
  const int64_t total = static_cast<int64_t>(batch) * q_rows;
  const int64_t d = static_cast<int64_t>(shape.num_heads) * shape.head_dim;
  ParallelFor(total, 2 * kv_rows * d, [&](int64_t row) {
    thread_local std::vector<float> scores;
    scores.resize(std::max<size_t>(scores.size(), kv_rows));
    const int64_t b = row / q_rows;
    const int64_t t = row % q_rows;
    int64_t n = key_lengths[b];
    if (causal) n = std::min<int64_t>(n, t + 1);
    const int64_t first = b * kv_rows;
    const KeyValueRows run{k + first * kv_stride, v + first * kv_stride, n, kv_stride};
    AttendQuery(q + row * q_stride, absl::MakeConstSpan(&run, 1), shape, scores.data(),
                out + row * out_stride);
  });
}

}  // namespace kvmt
