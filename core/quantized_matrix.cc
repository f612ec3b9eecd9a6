#include "core/quantized_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

namespace kvmt {

QuantizedMatrix::QuantizedMatrix(int64_t rows, int64_t cols)
    : rows_(rows), cols_(cols), scales_({rows}) {
  if (rows * cols == 0) return;
  const size_t bytes = ((static_cast<size_t>(rows * cols) + 63) / 64) * 64;
  void* ptr = std::aligned_alloc(64, bytes);
  if (ptr == nullptr) throw std::bad_alloc();
  storage_ = std::shared_ptr<int8_t>(static_cast<int8_t*>(ptr), [](int8_t* p) { std::free(p); });
  data_ = storage_.get();
}

QuantizedMatrix QuantizedMatrix::Quantize(const Tensor& weight) {
  const int64_t rows = weight.dim(0);
  const int64_t cols = weight.size() / std::max<int64_t>(rows, 1);
  QuantizedMatrix q(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = weight.data() + r * cols;
    float max_abs = 0.0f;
    for (int64_t j = 0; j < cols; ++j) max_abs = std::max(max_abs, std::fabs(w[j]));
    const float scale = max_abs > 0.0f ? 127.0f / max_abs : 1.0f;
    q.scales()[r] = scale;
    int8_t* out = q.data() + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      out[j] = static_cast<int8_t>(std::clamp(std::nearbyint(w[j] * scale), -127.0f, 127.0f));
    }
  }
  return q;
}

Tensor QuantizedMatrix::Dequantize() const {
  Tensor out({rows_, cols_});
  for (int64_t r = 0; r < rows_; ++r) {
    const float inverse = 1.0f / scales()[r];
    for (int64_t j = 0; j < cols_; ++j) {
      out.data()[r * cols_ + j] = static_cast<float>(data_[r * cols_ + j]) * inverse;
    }
  }
  return out;
}

}  // namespace kvmt
