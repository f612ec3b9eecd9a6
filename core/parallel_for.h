// ParallelFor: fn(i) for i in [0, n) on the OpenMP threads (the pool oneDNN uses) when there is
// enough work to pay for waking them, else inline. Inline means no parallel region at all:
// libgomp allocates a fresh team for every one-thread region, which would put heap allocations
// into every decoder step.
#pragma once

#include <omp.h>

#include <cstdint>

namespace kvmt {

// Below this many (roughly) multiply-adds a loop runs on the calling thread.
inline constexpr int64_t kMinParallelWork = 32768;

template <typename Fn>
void ParallelFor(int64_t n, int64_t work_per_item, Fn&& fn) {
  if (n < 2 || n * work_per_item < kMinParallelWork || omp_get_max_threads() < 2) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) fn(i);
}

}  // namespace kvmt
