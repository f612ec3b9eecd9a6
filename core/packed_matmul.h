// PackedMatMul: dst[m, n] = src[m, k] · W[n, k]^T (+ bias, + activation) on oneDNN primitives
// built for each exact row count, over weights reordered once into the layout those primitives
// want. oneDNN 2.6 picks its fast kernels (brgemm, AMX, VNNI) only for fixed shapes: with a
// runtime row count it falls back to a generic GEMM several times slower for int8 and bf16.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/activation.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace kvmt {

class PackedMatMul {
 public:
  struct Types {
    dnnl::memory::data_type src;
    dnnl::memory::data_type weights;
    dnnl::memory::data_type dst;
    bool bias = false;  // float32 [n], added before the activation.
    std::optional<Activation> activation;
  };

  // plain_weights: [n, k] row-major values of `types.weights` (copied; need not outlive this).
  static absl::StatusOr<std::unique_ptr<PackedMatMul>> Create(int64_t k, int64_t n,
                                                              const Types& types,
                                                              const void* plain_weights);

  // src: m rows of k values; dst: m rows of n values; bias: n floats when types.bias.
  // Rows are run in chunks of at most kMaxRows, each on the primitive for its row count.
  void Execute(const void* src, int64_t m, void* dst, const float* bias) const;

  // oneDNN's implementation name, e.g. "brg:avx512_core_amx_int8".
  const std::string& implementation() const { return implementation_; }

  static constexpr int64_t kMaxRows = 256;

 private:
  PackedMatMul(int64_t k, int64_t n, const Types& types) : k_(k), n_(n), types_(types) {}
  dnnl::matmul::primitive_desc Describe(int64_t rows, const dnnl::memory::desc& weights) const;
  // The primitive for `rows` rows and the calling thread's OpenMP thread count (oneDNN fixes a
  // primitive's team size when it builds it), built on first use; null if oneDNN refuses it.
  const dnnl::matmul* ForRows(int64_t rows) const;
  void Run(const dnnl::matmul& primitive, const void* src, int64_t rows, void* dst,
           const float* bias) const;

  const int64_t k_;
  const int64_t n_;
  const Types types_;
  dnnl::memory::desc packed_desc_;
  dnnl::memory packed_;
  std::string implementation_;
  mutable std::mutex mutex_;
  // Keyed by (rows, threads).
  mutable absl::flat_hash_map<std::pair<int64_t, int>, std::unique_ptr<dnnl::matmul>> by_rows_;
};

}  // namespace kvmt
