#include "core/log_softmax_top_k.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/vectorize.h"

namespace kvmt {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
// 256 floats: one kilobyte, in L1 while the chunk is summed and then scanned for the top-k.
constexpr int64_t kChunk = 256;

KVMT_VECTORIZED float ChunkMax(const float* x, int64_t n) {
  float max_value = kMinusInf;
#pragma omp simd reduction(max : max_value)
  for (int64_t i = 0; i < n; ++i) max_value = MaxOf(max_value, x[i]);
  return max_value;
}

KVMT_VECTORIZED float ChunkSumExp(const float* x, int64_t n, float max_value) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += ExpApprox(x[i] - max_value);
  return sum;
}

// Running (max, sum of exp(x - max)), merged chunk by chunk.
struct Normaliser {
  float max = kMinusInf;
  float sum = 0.0f;

  void Merge(float chunk_max, float chunk_sum) {
    if (chunk_max == kMinusInf) return;
    if (chunk_max > max) {
      sum = sum * std::exp(max - chunk_max) + chunk_sum;
      max = chunk_max;
    } else {
      sum += chunk_sum * std::exp(chunk_max - max);
    }
  }
};

// `top` as a min-heap of its `size` entries: the worst (smallest value, then larger index) on top.
bool Worse(const TopKEntry& a, const TopKEntry& b) {
  return a.value < b.value || (a.value == b.value && a.index > b.index);
}
bool HeapOrder(const TopKEntry& a, const TopKEntry& b) { return Worse(b, a); }

}  // namespace

float LogSumExpTopK(const float* x, int64_t n, absl::Span<const float> extra, int k, TopKEntry* top,
                    int* found) {
  Normaliser normaliser;
  int size = 0;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t count = std::min(kChunk, n - begin);
    const float* chunk = x + begin;
    const float chunk_max = ChunkMax(chunk, count);
    if (chunk_max == kMinusInf) continue;
    normaliser.Merge(chunk_max, ChunkSumExp(chunk, count, chunk_max));
    // Scanned in increasing index order, a value equal to the heap's worst never replaces it.
    if (k == 0 || (size == k && !(chunk_max > top[0].value))) continue;
    for (int64_t i = 0; i < count; ++i) {
      const float value = chunk[i];
      if (value == kMinusInf) continue;
      if (size < k) {
        top[size++] = TopKEntry{value, static_cast<int32_t>(begin + i)};
        std::push_heap(top, top + size, HeapOrder);
      } else if (value > top[0].value) {
        std::pop_heap(top, top + size, HeapOrder);
        top[size - 1] = TopKEntry{value, static_cast<int32_t>(begin + i)};
        std::push_heap(top, top + size, HeapOrder);
      }
    }
  }
  for (float value : extra) normaliser.Merge(value, 1.0f);
  std::sort_heap(top, top + size, HeapOrder);
  *found = size;
  return normaliser.max + std::log(normaliser.sum);
}

}  // namespace kvmt
