// Float32 Linear: a oneDNN matmul with a runtime row count over the weights in place (for
// float32 the generic GEMM it picks is about as fast as the fixed-shape kernels, and packing
// would double the weights' memory), bias and activation fused. oneDNN fixes a primitive's
// thread team when it builds it (its descriptor already), so there is one primitive per OpenMP
// thread count in use.
#include <omp.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/linear_implementations.h"
#include "core/onednn.h"

namespace kvmt {
namespace {

using dt = dnnl::memory::data_type;

// The matmul for the calling thread's OpenMP thread count; throws dnnl::error if oneDNN cannot.
dnnl::matmul BuildMatMul(int64_t k, int64_t n, bool has_bias,
                         std::optional<Activation> activation) {
  const auto rows = DNNL_RUNTIME_DIM_VAL;
  const dnnl::memory::desc src({rows, k}, dt::f32, {k, 1});
  const dnnl::memory::desc weights({k, n}, dt::f32, {1, k});
  const dnnl::memory::desc dst({rows, n}, dt::f32, {n, 1});
  const dnnl::matmul::desc desc =
      has_bias ? dnnl::matmul::desc(src, weights, dnnl::memory::desc({1, n}, dt::f32, {n, 1}), dst)
               : dnnl::matmul::desc(src, weights, dst);
  return dnnl::matmul(dnnl::matmul::primitive_desc(desc, ActivationAttr(activation), CpuEngine()));
}

class Float32Linear : public Linear {
 public:
  Float32Linear(Tensor weight, Tensor bias, std::optional<Activation> activation)
      : weight_(std::move(weight)), bias_(std::move(bias)), activation_(activation) {}

  void Forward(const float* x, int64_t m, float* y) const override {
    if (m == 0) return;
    const OneDnnCallScope scope;
    const int64_t n = weight_.dim(0);
    const int64_t k = weight_.dim(1);
    dnnl::engine& engine = CpuEngine();
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, dnnl::memory({{m, k}, dt::f32, {k, 1}}, engine, const_cast<float*>(x))},
        {DNNL_ARG_WEIGHTS,
         dnnl::memory({{k, n}, dt::f32, {1, k}}, engine, const_cast<float*>(weight_.data()))},
        {DNNL_ARG_DST, dnnl::memory({{m, n}, dt::f32, {n, 1}}, engine, y)}};
    if (!bias_.empty()) {
      args.emplace(DNNL_ARG_BIAS, dnnl::memory({{1, n}, dt::f32, {n, 1}}, engine,
                                               const_cast<float*>(bias_.data())));
    }
    dnnl::stream& stream = ThreadStream();
    Primitive().execute(stream, args);
    stream.wait();
  }

  ComputeType compute_type() const override { return ComputeType::kFloat32; }
  int64_t in_features() const override { return weight_.dim(1); }
  int64_t out_features() const override { return weight_.dim(0); }

  // The primitive for the calling thread's thread count, built on first use (MakeFloat32Linear
  // builds the first, so that a shape oneDNN refuses fails there).
  const dnnl::matmul& Primitive() const {
    const int threads = omp_get_max_threads();
    std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<dnnl::matmul>& slot = by_threads_[threads];
    if (slot == nullptr) {
      slot = std::make_unique<dnnl::matmul>(
          BuildMatMul(weight_.dim(1), weight_.dim(0), !bias_.empty(), activation_));
    }
    return *slot;
  }

 private:
  const Tensor weight_;
  const Tensor bias_;
  const std::optional<Activation> activation_;
  mutable std::mutex mutex_;
  mutable absl::flat_hash_map<int, std::unique_ptr<dnnl::matmul>> by_threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> MakeFloat32Linear(Tensor weight, Tensor bias,
                                                          std::optional<Activation> activation) {
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  const OneDnnCallScope scope;
  auto linear = std::make_unique<Float32Linear>(std::move(weight), std::move(bias), activation);
  try {
    linear->Primitive();
  } catch (const dnnl::error& error) {
    return absl::InternalError(
        absl::StrCat("oneDNN cannot build a float32 ", k, "x", n, " matmul: ", error.what()));
  }
  return linear;
}

}  // namespace kvmt
