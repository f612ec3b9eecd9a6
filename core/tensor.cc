#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <numeric>
#include <stdexcept>

#include "absl/strings/str_join.h"

namespace kvmt {
namespace {

int64_t NumElements(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

}  // namespace

Tensor::Tensor(std::vector<int64_t> shape) : shape_(std::move(shape)), size_(NumElements(shape_)) {
  if (size_ == 0) return;
  const size_t bytes = ((static_cast<size_t>(size_) * sizeof(float) + 63) / 64) * 64;
  void* ptr = std::aligned_alloc(64, bytes);
  if (ptr == nullptr) throw std::bad_alloc();
  storage_ = std::shared_ptr<float>(static_cast<float*>(ptr), [](float* p) { std::free(p); });
  data_ = storage_.get();
}

Tensor Tensor::Zeros(std::vector<int64_t> shape) {
  Tensor t(std::move(shape));
  if (t.size_ > 0) std::memset(t.data_, 0, t.size_ * sizeof(float));
  return t;
}

Tensor Tensor::FromVector(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.size_) {
    throw std::invalid_argument("Tensor::FromVector: value count does not match the shape");
  }
  std::copy(values.begin(), values.end(), t.data_);
  return t;
}

Tensor Tensor::Reshaped(std::vector<int64_t> shape) const {
  if (NumElements(shape) != size_) {
    throw std::invalid_argument("Tensor::Reshaped: element count changes");
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t(shape_);
  if (size_ > 0) std::memcpy(t.data_, data_, size_ * sizeof(float));
  return t;
}

std::string Tensor::ShapeString() const { return "[" + absl::StrJoin(shape_, ", ") + "]"; }

}  // namespace kvmt
