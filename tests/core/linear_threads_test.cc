// --threads holds for layers built under another thread count: oneDNN fixes a primitive's
// thread team when it builds it, so a layer built while 2 threads were allowed must not open
// 2-thread regions once the caller allows 1. Observed by interposing libgomp's GOMP_parallel,
// through which every OpenMP parallel region starts (oneDNN's and kvmt's alike).
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "core/compute_type.h"
#include "core/linear.h"
#include "core/ops.h"
#include "gtest/gtest.h"

namespace {

std::atomic<unsigned> largest_team{0};

}  // namespace

extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) {
  using Real = void (*)(void (*)(void*), void*, unsigned, unsigned);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "GOMP_parallel"));
  // 0: no num_threads clause, the team is the calling thread's OpenMP thread count.
  const unsigned team =
      num_threads != 0 ? num_threads : static_cast<unsigned>(omp_get_max_threads());
  unsigned seen = largest_team.load();
  while (team > seen && !largest_team.compare_exchange_weak(seen, team)) {
  }
  real(fn, data, num_threads, flags);
}

namespace kvmt {
namespace {

TEST(LinearThreadsTest, LayersBuiltForTwoThreadsRunOnOneWhenOneIsAllowed) {
  SetNumThreads(2);
  std::vector<ComputeType> types = {ComputeType::kFloat32};
  if (CpuHasInt8Dot()) types.push_back(ComputeType::kInt8);
  if (CpuHasNativeBFloat16()) types.push_back(ComputeType::kBFloat16);
  Tensor w = Tensor::Zeros({512, 512});
  std::vector<std::unique_ptr<Linear>> layers;
  std::vector<float> x(256 * 512, 1.0f), y(256 * 512);
  for (ComputeType type : types) {
    absl::StatusOr<std::unique_ptr<Linear>> layer =
        MakeLinear(LinearParameters{w, {}, Tensor(), Activation::kRelu}, type);
    ASSERT_TRUE(layer.ok()) << layer.status();
    (*layer)->Forward(x.data(), 64, y.data());  // Primitives for 64 rows and 2 threads.
    layers.push_back(*std::move(layer));
  }
  // The check can fail: with two threads allowed, the layers open 2-thread regions.
  EXPECT_EQ(largest_team.load(), 2u);

  SetNumThreads(1);
  for (const auto& layer : layers) {
    for (int64_t m : {1, 64, 256}) {
      largest_team = 0;
      layer->Forward(x.data(), m, y.data());
      EXPECT_LE(largest_team.load(), 1u) << ComputeTypeName(layer->compute_type()) << " with " << m
                                         << " rows opened a parallel region of more threads";
    }
  }
}

}  // namespace
}  // namespace kvmt
