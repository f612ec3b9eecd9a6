// Helpers for kernels the compiler vectorises: KVMT_VECTORIZED builds a function for AVX-512,
// AVX2 and the baseline, picked at load time by the CPU (GCC target_clones), and ExpApprox is a
// branch-free exp (Cephes' polynomial, within 2 ulp of expf) that vectorises where std::exp
// stays a scalar call.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

// ThreadSanitizer's runtime is not up yet when the loader runs ifunc resolvers, and resolving a
// clone then crashes the process: a TSan build gets the baseline version only.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KVMT_NO_TARGET_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(KVMT_NO_TARGET_CLONES)
#define KVMT_VECTORIZED
#else
#define KVMT_VECTORIZED __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

namespace kvmt {

// max(a, b) for `#pragma omp simd reduction(max : ...)` loops: GCC 12 vectorises the reduction
// written this way, but leaves std::max's (a < b) ? b : a a scalar loop, 4 cycles per element.
// A NaN b is skipped, as std::max(a, b) skips it.
inline float MaxOf(float a, float b) { return b > a ? b : a; }

inline float ExpApprox(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;
  constexpr float kLn2Low = -2.12194440e-4f;
  // Written so that NaN clamps too (std::min/max pass it through): converting a NaN `n` to int
  // below would be undefined. NaN in gives NaN out.
  const float clamped = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;
  const float n = std::nearbyint(clamped * kLog2e);
  const float r = clamped - n * kLn2High - n * kLn2Low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const float two_to_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x != x ? x : (x < -87.0f ? 0.0f : y * two_to_n);
}

}  // namespace kvmt
