// BFloat16 Linear: weights rounded to bfloat16 once and packed for oneDNN's bf16 kernels
// (AVX512-BF16 / AMX); activations rounded per call; float32 accumulation, bias and activation
// fused, float32 output.
#include <bit>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/linear_implementations.h"
#include "core/packed_matmul.h"
#include "core/parallel_for.h"
#include "core/vectorize.h"

namespace kvmt {
namespace {

using dt = dnnl::memory::data_type;

// Round to nearest even, as oneDNN and torch round float32 to bfloat16.
KVMT_VECTORIZED void ToBFloat16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(x[i]);
    out[i] = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
}

class BFloat16Linear : public Linear {
 public:
  BFloat16Linear(int64_t k, int64_t n, Tensor bias, std::unique_ptr<PackedMatMul> matmul)
      : k_(k), n_(n), bias_(std::move(bias)), matmul_(std::move(matmul)) {}

  void Forward(const float* x, int64_t m, float* y) const override {
    if (m == 0) return;
    thread_local std::vector<uint16_t> src;
    if (static_cast<int64_t>(src.size()) < m * k_) src.resize(m * k_);
    uint16_t* rounded = src.data();
    ParallelFor(m, k_, [&](int64_t r) { ToBFloat16(x + r * k_, k_, rounded + r * k_); });
    matmul_->Execute(rounded, m, y, bias_.empty() ? nullptr : bias_.data());
  }

  ComputeType compute_type() const override { return ComputeType::kBFloat16; }
  int64_t in_features() const override { return k_; }
  int64_t out_features() const override { return n_; }

 private:
  const int64_t k_;
  const int64_t n_;
  const Tensor bias_;
  const std::unique_ptr<PackedMatMul> matmul_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> MakeBFloat16Linear(const Tensor& weight, Tensor bias,
                                                           std::optional<Activation> activation) {
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  std::vector<uint16_t> rounded(static_cast<size_t>(n * k));
  ToBFloat16(weight.data(), n * k, rounded.data());
  PackedMatMul::Types types{dt::bf16, dt::bf16, dt::f32, !bias.empty(), activation};
  absl::StatusOr<std::unique_ptr<PackedMatMul>> matmul =
      PackedMatMul::Create(k, n, types, rounded.data());
  if (!matmul.ok()) return matmul.status();
  return std::make_unique<BFloat16Linear>(k, n, std::move(bias), *std::move(matmul));
}

}  // namespace kvmt
