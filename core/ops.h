// Row-wise numerical ops of the Transformer: layer norm, softmax, residual adds, embeddings.
// Row loops run on OpenMP threads (the same pool oneDNN uses), sized by SetNumThreads.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "core/tensor.h"

namespace kvmt {

// Threads for the calling thread's subsequent ops (OpenMP is per calling thread). 0: all cores.
void SetNumThreads(int threads);

// y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta for `rows` rows of `d` values.
// x and y may be the same buffer.
void LayerNorm(const float* x, int64_t rows, int64_t d, const Tensor& gamma, const Tensor& beta,
               float epsilon, float* y);

// y += x over n values.
void AddInPlace(float* y, const float* x, int64_t n);

// y = log_softmax(x) over n values; x and y may be the same buffer.
void LogSoftmax(const float* x, int64_t n, float* y);

// out[i] = table[ids[i]] * scale + positions[position[i]], rows of d = table.dim(1) values.
// Ids and positions must be in range (checked by the caller against the model).
void EmbedTokens(const Tensor& table, absl::Span<const int32_t> ids, float scale,
                 const Tensor& positions, absl::Span<const int32_t> position, float* out);

}  // namespace kvmt
