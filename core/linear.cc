#include "core/linear.h"

#include <mutex>
#include <memory>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "core/onednn.h"

namespace kvmt {
namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

struct MatMulKey {
  int64_t k;
  int64_t n;
  bool has_bias;
  bool operator==(const MatMulKey& other) const {
    return k == other.k && n == other.n && has_bias == other.has_bias;
  }
  template <typename H>
  friend H AbslHashValue(H h, const MatMulKey& key) {
    return H::combine(std::move(h), key.k, key.n, key.has_bias);
  }
};

struct MatMulPrimitive {
  dnnl::matmul primitive;
  dnnl::memory::desc weights_desc;
  dnnl::memory::desc bias_desc;
};

// One primitive per weight shape, shared by every thread (oneDNN primitives are thread-safe).
const MatMulPrimitive& GetPrimitive(int64_t k, int64_t n, bool has_bias) {
  static std::mutex mutex;
  static absl::flat_hash_map<MatMulKey, std::unique_ptr<MatMulPrimitive>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& entry = cache[MatMulKey{k, n, has_bias}];
  if (entry == nullptr) {
    const auto runtime = DNNL_RUNTIME_DIM_VAL;
    dnnl::memory::desc src({runtime, k}, dt::f32, {k, 1});
    // W is [n, k] row-major: as the [k, n] right operand its strides are {1, k}.
    dnnl::memory::desc weights({k, n}, dt::f32, {1, k});
    dnnl::memory::desc bias = has_bias ? dnnl::memory::desc({1, n}, dt::f32, {n, 1})
                                       : dnnl::memory::desc();
    dnnl::memory::desc dst({runtime, n}, dt::f32, {n, 1});
    dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(src, weights, bias, dst)
                                       : dnnl::matmul::desc(src, weights, dst);
    dnnl::matmul::primitive_desc pd(desc, CpuEngine());
    entry = std::make_unique<MatMulPrimitive>(
        MatMulPrimitive{dnnl::matmul(pd), weights, bias});
  }
  return *entry;
}

}  // namespace

void Linear(const float* x, int64_t m, const Tensor& weight, const Tensor& bias, float* y) {
  if (m == 0) return;
  const OneDnnCallScope scope;
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  const bool has_bias = !bias.empty();
  const MatMulPrimitive& mm = GetPrimitive(k, n, has_bias);
  dnnl::engine& engine = CpuEngine();
  dnnl::memory src_mem({{m, k}, dt::f32, {k, 1}}, engine, const_cast<float*>(x));
  dnnl::memory weights_mem(mm.weights_desc, engine, const_cast<float*>(weight.data()));
  dnnl::memory dst_mem({{m, n}, dt::f32, {n, 1}}, engine, y);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weights_mem}, {DNNL_ARG_DST, dst_mem}};
  if (has_bias) {
    args.emplace(DNNL_ARG_BIAS,
                 dnnl::memory(mm.bias_desc, engine, const_cast<float*>(bias.data())));
  }
  dnnl::stream& stream = ThreadStream();
  mm.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace kvmt
