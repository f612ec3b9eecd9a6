// Steady-state decoding allocates nothing: after warm-up, a run of decoder steps (greedy and
// beam segments, crossing a cache block boundary) makes no heap allocation in kvmt's code.
// malloc and friends are interposed for the whole process, so operator new and every library
// are seen; allocations made while a oneDNN primitive runs are counted apart and reported. For
// every compute type. Not in sanitizer builds: their runtime owns malloc, and they are built
// with clang, whose OpenMP runtime (libomp) allocates in worksharing loops where gcc's libgomp
// does not.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "cache/block_pool.h"
#include "core/compute_type.h"
#include "core/onednn.h"
#include "core/ops.h"
#include "decoder/search/batch_search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "tests/sanitizers/sanitized.h"

#ifndef KVMT_SANITIZED
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* ptr);
}

namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> kvmt_allocations{0};
std::atomic<int64_t> onednn_allocations{0};

void CountAllocation() {
  if (!counting.load(std::memory_order_relaxed)) return;
  if (kvmt::OneDnnCallScope::active()) {
    onednn_allocations.fetch_add(1, std::memory_order_relaxed);
  } else {
    kvmt_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

extern "C" {
void* malloc(size_t size) {
  CountAllocation();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  CountAllocation();
  return __libc_calloc(count, size);
}
void* realloc(void* ptr, size_t size) {
  CountAllocation();
  return __libc_realloc(ptr, size);
}
void* memalign(size_t alignment, size_t size) {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  CountAllocation();
  *out = __libc_memalign(alignment, size);
  return *out == nullptr ? ENOMEM : 0;
}
void free(void* ptr) { __libc_free(ptr); }
}
#endif

namespace kvmt {
namespace {

class StepAllocationTest : public ::testing::TestWithParam<ComputeType> {};

TEST_P(StepAllocationTest, SteadyStateDecodingDoesNotAllocate) {
#ifdef KVMT_SANITIZED
  GTEST_SKIP() << "a property of the gcc/libgomp build (see the top of this file)";
#else
  if (GetParam() == ComputeType::kBFloat16 && !CpuHasNativeBFloat16()) {
    GTEST_SKIP() << "no native bfloat16 on this CPU";
  }
  if (GetParam() == ComputeType::kInt8 && !CpuHasInt8Dot()) {
    GTEST_SKIP() << "no VNNI/AMX on this CPU";
  }
  SetNumThreads(2);
  RandomModelSpec spec;
  spec.d_model = 64;
  spec.num_heads = 4;
  spec.ffn_dim = 128;
  spec.source_vocab = 300;
  spec.target_vocab = 300;
  spec.max_positions = 256;
  std::shared_ptr<Model> model = MakeRandomModel(spec);
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model->config, model->weights, GetParam());
  ASSERT_TRUE(made_encoder.ok()) << made_encoder.status();
  Encoder& encoder = **made_encoder;
  absl::StatusOr<std::unique_ptr<Decoder>> made_decoder =
      Decoder::Create(model->config, model->weights, GetParam());
  ASSERT_TRUE(made_decoder.ok()) << made_decoder.status();
  Decoder& decoder = **made_decoder;
  auto pool =
      std::make_shared<BlockPool>(KVLayoutFor(model->config).block_floats(), int64_t{64} << 20);
  std::unique_ptr<StepModel> step_model = MakeCachedStepModel(decoder, pool);
  BatchSearch search(*step_model, SearchVocabulary{0, 1, {}, 300});

  auto sources =
      encoder.Encode({{5, 6, 7, 8, 1}, {9, 10, 1}, {11, 12, 13, 14, 15, 16, 1}, {17, 1}}, pool);
  ASSERT_TRUE(sources.ok()) << sources.status();
  for (int s = 0; s < 4; ++s) {
    SearchOptions options;
    options.beam_size = s < 2 ? 4 : 1;  // Two beam segments, two greedy ones.
    options.min_decoding_length = 120;  // Fixed length: nobody finishes during the test.
    options.max_decoding_length = 120;
    ASSERT_TRUE(search.Add(s, (*sources)[s], {}, options).ok());
  }
  SearchStepOutput output;
  for (int step = 0; step < 40; ++step) ASSERT_TRUE(search.Step(output).ok());

  // Steps 40 to 59 cross the block boundary at position 48.
  kvmt_allocations = 0;
  onednn_allocations = 0;
  counting = true;
  for (int step = 40; step < 60; ++step) ASSERT_TRUE(search.Step(output).ok());
  counting = false;

  EXPECT_EQ(search.num_hypotheses(), 10);
  EXPECT_EQ(kvmt_allocations.load(), 0) << "heap allocations by kvmt code in 20 steps";
  std::printf(
      "[ steady state ] 20 steps: %lld allocations in kvmt code, %lld inside oneDNN "
      "calls (%.1f per step)\n",
      static_cast<long long>(kvmt_allocations.load()),
      static_cast<long long>(onednn_allocations.load()), onednn_allocations.load() / 20.0);
#endif
}

INSTANTIATE_TEST_SUITE_P(ComputeTypes, StepAllocationTest,
                         ::testing::Values(ComputeType::kFloat32, ComputeType::kInt8,
                                           ComputeType::kBFloat16),
                         [](const auto& param) {
                           return std::string(ComputeTypeName(param.param));
                         });

}  // namespace
}  // namespace kvmt
