// Float32 Linear: one oneDNN matmul per layer with a runtime row count over the weights in
// place (for float32 the generic GEMM it picks is as fast as the fixed-shape kernels), bias and
// activation fused.
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/linear_implementations.h"
#include "core/onednn.h"

namespace kvmt {
namespace {

using dt = dnnl::memory::data_type;

class Float32Linear : public Linear {
 public:
  Float32Linear(Tensor weight, Tensor bias, dnnl::matmul primitive)
      : weight_(std::move(weight)), bias_(std::move(bias)), primitive_(std::move(primitive)) {}

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
    primitive_.execute(stream, args);
    stream.wait();
  }

  ComputeType compute_type() const override { return ComputeType::kFloat32; }
  int64_t in_features() const override { return weight_.dim(1); }
  int64_t out_features() const override { return weight_.dim(0); }

 private:
  const Tensor weight_;
  const Tensor bias_;
  const dnnl::matmul primitive_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> MakeFloat32Linear(Tensor weight, Tensor bias,
                                                          std::optional<Activation> activation) {
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  const OneDnnCallScope scope;
  try {
    const auto rows = DNNL_RUNTIME_DIM_VAL;
    const dnnl::memory::desc src({rows, k}, dt::f32, {k, 1});
    const dnnl::memory::desc weights({k, n}, dt::f32, {1, k});
    const dnnl::memory::desc dst({rows, n}, dt::f32, {n, 1});
    const dnnl::matmul::desc desc =
        bias.empty()
            ? dnnl::matmul::desc(src, weights, dst)
            : dnnl::matmul::desc(src, weights, dnnl::memory::desc({1, n}, dt::f32, {n, 1}), dst);
    dnnl::matmul primitive(
        dnnl::matmul::primitive_desc(desc, ActivationAttr(activation), CpuEngine()));
    return std::make_unique<Float32Linear>(std::move(weight), std::move(bias),
                                           std::move(primitive));
  } catch (const dnnl::error& error) {
    return absl::InternalError(
        absl::StrCat("oneDNN cannot build a float32 ", k, "x", n, " matmul: ", error.what()));
  }
}

}  // namespace kvmt
