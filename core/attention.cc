#include "core/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel_for.h"
#include "core/vectorize.h"

namespace kvmt {

namespace {

// scores[r] = q · key_r * scale for `rows` keys `stride` apart.
KVMT_VECTORIZED void Scores(const float* q, const float* keys, int64_t rows, int64_t stride,
                            int head_dim, float scale, float* scores) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* key = keys + r * stride;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int i = 0; i < head_dim; ++i) dot += q[i] * key[i];
    scores[r] = dot * scale;
  }
}

// scores <- exp(scores - max); returns their sum.
KVMT_VECTORIZED float ExpShifted(float* scores, int64_t n) {
  float max_score = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max_score)
  for (int64_t i = 0; i < n; ++i) max_score = MaxOf(max_score, scores[i]);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    scores[i] = ExpApprox(scores[i] - max_score);
    sum += scores[i];
  }
  return sum;
}

// out += sum_r weights[r] * value_r.
KVMT_VECTORIZED void WeightedSum(const float* weights, const float* values, int64_t rows,
                                 int64_t stride, int head_dim, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* value = values + r * stride;
    const float w = weights[r];
#pragma omp simd
    for (int i = 0; i < head_dim; ++i) out[i] += w * value[i];
  }
}

}  // namespace

void AttendQuery(const float* q, absl::Span<const KeyValueRows> runs, AttentionShape shape,
                 float* scores, float* out) {
  const int hd = shape.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int h = 0; h < shape.num_heads; ++h) {
    int64_t total = 0;
    for (const KeyValueRows& run : runs) {
      Scores(q + h * hd, run.keys + h * hd, run.rows, run.row_stride, hd, scale, scores + total);
      total += run.rows;
    }
    const float inv_sum = 1.0f / ExpShifted(scores, total);
    float* oh = out + h * hd;
    for (int i = 0; i < hd; ++i) oh[i] = 0.0f;
    int64_t index = 0;
    for (const KeyValueRows& run : runs) {
      WeightedSum(scores + index, run.values + h * hd, run.rows, run.row_stride, hd, oh);
      index += run.rows;
    }
    for (int i = 0; i < hd; ++i) oh[i] *= inv_sum;
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

void PackedSequenceAttention(const float* q, int64_t q_stride, const float* k, const float* v,
                             int64_t kv_stride, absl::Span<const int64_t> offsets,
                             AttentionShape shape, float* out, int64_t out_stride) {
  const int64_t total = offsets.back();
  int64_t longest = 0;
  for (size_t b = 0; b + 1 < offsets.size(); ++b) {
    longest = std::max(longest, offsets[b + 1] - offsets[b]);
  }
  const int64_t d = static_cast<int64_t>(shape.num_heads) * shape.head_dim;
  ParallelFor(total, 2 * longest * d, [&](int64_t row) {
    thread_local std::vector<float> scores;
    if (static_cast<int64_t>(scores.size()) < longest) scores.resize(longest);
    // The sequence holding `row`: the last offset <= row.
    const size_t b = static_cast<size_t>(std::upper_bound(offsets.begin(), offsets.end(), row) -
                                         offsets.begin() - 1);
    const int64_t first = offsets[b];
    const KeyValueRows run{k + first * kv_stride, v + first * kv_stride, offsets[b + 1] - first,
                           kv_stride};
    AttendQuery(q + row * q_stride, absl::MakeConstSpan(&run, 1), shape, scores.data(),
                out + row * out_stride);
  });
}

}  // namespace kvmt
