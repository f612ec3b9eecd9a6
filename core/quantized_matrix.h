// QuantizedMatrix: an int8 matrix with one scale per row, CTranslate2's int8 layout: row r holds
// round(w[r] * scale[r]) with scale[r] = 127 / max |w[r]|, so w ~ q / scale. Copies share storage.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace kvmt {

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  // Uninitialised values and scales of the given shape.
  QuantizedMatrix(int64_t rows, int64_t cols);

  // Per-row symmetric quantisation of a [rows, cols] float tensor (round to nearest even); an
  // all-zero row gets scale 1.
  static QuantizedMatrix Quantize(const Tensor& weight);
  // q / scale, row by row.
  Tensor Dequantize() const;

  int8_t* data() { return data_; }
  const int8_t* data() const { return data_; }
  float* scales() { return scales_.data(); }
  const float* scales() const { return scales_.data(); }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool empty() const { return rows_ * cols_ == 0; }

 private:
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::shared_ptr<int8_t> storage_;
  int8_t* data_ = nullptr;
  Tensor scales_;
};

}  // namespace kvmt
