// Scaled dot-product multi-head attention kernels. Keys and values are rows of
// num_heads * head_dim floats (heads side by side), read in place from wherever they live —
// a projection's output, the source K/V, or the blocks of a KV cache — with no transposes.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace kvmt {

// A run of consecutive key/value rows; row r of head h starts at keys + r * row_stride + h * hd.
struct KeyValueRows {
  const float* keys;
  const float* values;
  int64_t rows;
  int64_t row_stride;
};

struct AttentionShape {
  int num_heads;
  int head_dim;
};

// out[h] = softmax(q[h] · K[h]^T / sqrt(head_dim)) · V[h] over all rows of `runs`, for every
// head. `scores` must hold the total number of rows. out must not alias q.
void AttendQuery(const float* q, absl::Span<const KeyValueRows> runs, AttentionShape shape,
                 float* scores, float* out);

// Batched sequence attention (encoder self-attention, and the decoder without cache).
// Query (b, t) is row b * q_rows + t of q (stride q_stride); its keys/values are rows
// [b * kv_rows, b * kv_rows + n) of k/v (stride kv_stride), where n = key_lengths[b], or
// min(key_lengths[b], t + 1) when causal. Output rows are laid out like the queries (stride
// out_stride). Runs on OpenMP threads over queries.
void SequenceAttention(const float* q, int64_t q_stride, const float* k, const float* v,
                       int64_t kv_stride, int batch, int64_t q_rows, int64_t kv_rows,
                       absl::Span<const int32_t> key_lengths, bool causal, AttentionShape shape,
                       float* out, int64_t out_stride);

// Self-attention within sequences packed back to back without padding (the encoder): sequence b
// is rows [offsets[b], offsets[b + 1]) of q, k/v and out (strides q_stride, kv_stride,
// out_stride), and each of its queries attends over all of its rows. offsets has one entry more
// than there are sequences. Runs on OpenMP threads over queries.
void PackedSequenceAttention(const float* q, int64_t q_stride, const float* k, const float* v,
                             int64_t kv_stride, absl::Span<const int64_t> offsets,
                             AttentionShape shape, float* out, int64_t out_stride);

}  // namespace kvmt
