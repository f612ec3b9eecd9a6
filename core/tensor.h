// Tensor: a dense row-major float32 array with a shape. Copies share storage (like a
// shared_ptr), so tied weights are one buffer; Clone() makes an independent copy.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace kvmt {

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised storage of the given shape, 64-byte aligned.
  explicit Tensor(std::vector<int64_t> shape);
  Tensor(std::initializer_list<int64_t> shape) : Tensor(std::vector<int64_t>(shape)) {}

  static Tensor Zeros(std::vector<int64_t> shape);
  static Tensor FromVector(std::vector<int64_t> shape, const std::vector<float>& values);

  float* data() { return data_; }
  const float* data() const { return data_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Same storage, new shape with the same number of elements.
  Tensor Reshaped(std::vector<int64_t> shape) const;
  Tensor Clone() const;
  std::string ShapeString() const;

 private:
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
  std::shared_ptr<float> storage_;
  float* data_ = nullptr;
};

}  // namespace kvmt
