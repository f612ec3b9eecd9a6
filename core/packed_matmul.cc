#include "core/packed_matmul.h"

#include <omp.h>

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/onednn.h"

namespace kvmt {
namespace {

using dt = dnnl::memory::data_type;

int64_t ElementBytes(dt type) {
  switch (type) {
    case dt::s8:
    case dt::u8:
      return 1;
    case dt::bf16:
    case dt::f16:
      return 2;
    default:
      return 4;
  }
}

}  // namespace

dnnl::matmul::primitive_desc PackedMatMul::Describe(int64_t rows,
                                                    const dnnl::memory::desc& weights) const {
  const dnnl::memory::desc src({rows, k_}, types_.src, {k_, 1});
  const dnnl::memory::desc dst({rows, n_}, types_.dst, {n_, 1});
  const dnnl::primitive_attr attr = ActivationAttr(types_.activation);
  if (types_.bias) {
    const dnnl::memory::desc bias({1, n_}, dt::f32, {n_, 1});
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, bias, dst), attr,
                                        CpuEngine());
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, CpuEngine());
}

absl::StatusOr<std::unique_ptr<PackedMatMul>> PackedMatMul::Create(int64_t k, int64_t n,
                                                                   const Types& types,
                                                                   const void* plain_weights) {
  std::unique_ptr<PackedMatMul> mm(new PackedMatMul(k, n, types));
  const OneDnnCallScope scope;
  try {
    // The layout the kernels for a mid-sized row count ask for; every row count is then built
    // on that same layout (oneDNN picks a kernel that takes it).
    const dnnl::memory::desc any({k, n}, types.weights, dnnl::memory::format_tag::any);
    const dnnl::matmul::primitive_desc reference = mm->Describe(64, any);
    mm->packed_desc_ = reference.weights_desc();
    mm->packed_ = dnnl::memory(mm->packed_desc_, CpuEngine());
    // W is [n, k] row-major: as the [k, n] right operand its strides are {1, k}.
    dnnl::memory plain({{k, n}, types.weights, {1, k}}, CpuEngine(),
                       const_cast<void*>(plain_weights));
    dnnl::stream& stream = ThreadStream();
    dnnl::reorder(plain, mm->packed_).execute(stream, plain, mm->packed_);
    stream.wait();
    mm->implementation_ = mm->Describe(1, mm->packed_desc_).impl_info_str();
  } catch (const dnnl::error& error) {
    return absl::InternalError(absl::StrCat("oneDNN cannot build a ", k, "x", n,
                                            " matmul with packed weights: ", error.what()));
  }
  // Single rows are the fallback of every other row count: they must work.
  if (mm->ForRows(1) == nullptr) {
    return absl::InternalError(
        absl::StrCat("oneDNN cannot build a one-row ", k, "x", n, " matmul on packed weights"));
  }
  return mm;
}

const dnnl::matmul* PackedMatMul::ForRows(int64_t rows) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::pair<int64_t, int> key(rows, omp_get_max_threads());
  auto it = by_rows_.find(key);
  if (it != by_rows_.end()) return it->second.get();
  std::unique_ptr<dnnl::matmul>& slot = by_rows_[key];
  try {
    const OneDnnCallScope scope;
    slot = std::make_unique<dnnl::matmul>(Describe(rows, packed_desc_));
  } catch (const dnnl::error&) {
    slot = nullptr;
  }
  return slot.get();
}

void PackedMatMul::Run(const dnnl::matmul& primitive, const void* src, int64_t rows, void* dst,
                       const float* bias) const {
  const OneDnnCallScope scope;
  dnnl::engine& engine = CpuEngine();
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC,
       dnnl::memory({{rows, k_}, types_.src, {k_, 1}}, engine, const_cast<void*>(src))},
      {DNNL_ARG_WEIGHTS, packed_},
      {DNNL_ARG_DST, dnnl::memory({{rows, n_}, types_.dst, {n_, 1}}, engine, dst)}};
  if (types_.bias) {
    args.emplace(DNNL_ARG_BIAS,
                 dnnl::memory({{1, n_}, dt::f32, {n_, 1}}, engine, const_cast<float*>(bias)));
  }
  dnnl::stream& stream = ThreadStream();
  primitive.execute(stream, args);
  stream.wait();
}

void PackedMatMul::Execute(const void* src, int64_t m, void* dst, const float* bias) const {
  const int64_t src_row_bytes = k_ * ElementBytes(types_.src);
  const int64_t dst_row_bytes = n_ * ElementBytes(types_.dst);
  for (int64_t begin = 0; begin < m;) {
    const int64_t rows = std::min(kMaxRows, m - begin);
    const dnnl::matmul* primitive = ForRows(rows);
    // A row count oneDNN refuses runs one row at a time.
    const int64_t step = primitive != nullptr ? rows : 1;
    if (primitive == nullptr) primitive = ForRows(1);
    for (int64_t r = begin; r < begin + rows; r += step) {
      Run(*primitive, static_cast<const char*>(src) + r * src_row_bytes, step,
          static_cast<char*>(dst) + r * dst_row_bytes, bias);
    }
    begin += rows;
  }
}

}  // namespace kvmt
