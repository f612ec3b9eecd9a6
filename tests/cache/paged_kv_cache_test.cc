#include "cache/paged_kv_cache.h"

#include <vector>

#include "gtest/gtest.h"

namespace kvmt {
namespace {

constexpr KVBlockLayout kLayout{/*num_layers=*/2, /*d_model=*/3, /*block_size=*/4};
constexpr int64_t kRowBytes = 2 * 2 * 3 * sizeof(float);  // K and V rows of both layers.

std::shared_ptr<BlockPool> MakePool(int64_t blocks) {
  return std::make_shared<BlockPool>(kLayout.block_floats(),
                                     blocks * kLayout.block_floats() * sizeof(float));
}

// Writes a value identifying (tag, layer, pos) into the K and V rows.
void Fill(PagedKVCache& cache, int seq, int pos, float tag) {
  for (int l = 0; l < kLayout.num_layers; ++l) {
    for (int i = 0; i < kLayout.d_model; ++i) {
      cache.KeyRow(seq, l, pos)[i] = tag + l * 0.1f + pos * 0.001f;
      cache.ValueRow(seq, l, pos)[i] = -(tag + l * 0.1f + pos * 0.001f);
    }
  }
}

void ExpectRows(const PagedKVCache& cache, int seq, int length, const std::vector<float>& tags) {
  ASSERT_EQ(cache.length(seq), length);
  for (int pos = 0; pos < length; ++pos) {
    const float tag = tags[pos];
    for (int l = 0; l < kLayout.num_layers; ++l) {
      const int block = pos / kLayout.block_size;
      const int row = pos % kLayout.block_size;
      EXPECT_FLOAT_EQ(cache.KeyBlock(seq, l, block)[row * kLayout.d_model],
                      tag + l * 0.1f + pos * 0.001f)
          << "seq " << seq << " layer " << l << " pos " << pos;
      EXPECT_FLOAT_EQ(cache.ValueBlock(seq, l, block)[row * kLayout.d_model + 2],
                      -(tag + l * 0.1f + pos * 0.001f));
    }
  }
}

TEST(PagedKVCacheTest, AppendsAcrossBlockBoundaries) {
  auto pool = MakePool(8);
  {
    PagedKVCache cache(pool, kLayout);
    const int seq = cache.AddSequence();
    for (int pos = 0; pos < 9; ++pos) {
      absl::StatusOr<int> appended = cache.Append(seq);
      ASSERT_TRUE(appended.ok());
      EXPECT_EQ(*appended, pos);
      Fill(cache, seq, pos, 1.0f);
    }
    ExpectRows(cache, seq, 9, std::vector<float>(9, 1.0f));
    EXPECT_EQ(pool->stats().used_blocks, 3);
  }
  EXPECT_EQ(pool->stats().used_blocks, 0);  // Destruction returns every block.
}

TEST(PagedKVCacheTest, ForkedBeamsShareBlocksAndCopyOnlyThePartialOne) {
  auto pool = MakePool(16);
  PagedKVCache cache(pool, kLayout);
  cache.AddSequence();
  cache.AddSequence();
  for (int pos = 0; pos < 6; ++pos) {  // One full block and two rows of the second.
    ASSERT_TRUE(cache.Append(0).ok());
    ASSERT_TRUE(cache.Append(1).ok());
    Fill(cache, 0, pos, 10.0f);
    Fill(cache, 1, pos, 20.0f);
  }
  EXPECT_EQ(pool->stats().used_blocks, 4);
  // Sequence 1 forks three ways, sequence 0 dies: no copies, its blocks are freed.
  ASSERT_TRUE(cache.Reorder(std::vector<int32_t>{1, 1, 1}).ok());
  EXPECT_EQ(pool->stats().used_blocks, 2);
  EXPECT_EQ(cache.traffic().bytes_copied, 0);
  EXPECT_EQ(cache.traffic().bytes_full_gather, 3 * 6 * kRowBytes);
  for (int s = 0; s < 3; ++s) ExpectRows(cache, s, 6, std::vector<float>(6, 20.0f));

  // Each child writes position 6: the first two copy the shared partial block (2 rows each),
  // the last one owns it by then and writes in place.
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(cache.Append(s).ok());
    Fill(cache, s, 6, 30.0f + s);
  }
  EXPECT_EQ(cache.traffic().bytes_copied, 2 * 2 * kRowBytes);
  EXPECT_EQ(pool->stats().used_blocks, 4);  // One shared full block + three partial blocks.
  for (int s = 0; s < 3; ++s) {
    std::vector<float> tags(7, 20.0f);
    tags[6] = 30.0f + s;
    ExpectRows(cache, s, 7, tags);
  }
  EXPECT_EQ(pool->RefCount(0) + pool->RefCount(1) + pool->RefCount(2) + pool->RefCount(3) +
                pool->RefCount(4) + pool->RefCount(5),
            3 + 1 + 1 + 1);
}

TEST(PagedKVCacheTest, FullPoolIsAnErrorNotACrash) {
  auto pool = MakePool(2);
  PagedKVCache cache(pool, kLayout);
  cache.AddSequence();
  for (int pos = 0; pos < 8; ++pos) ASSERT_TRUE(cache.Append(0).ok());
  absl::StatusOr<int> full = cache.Append(0);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
}

// As under a continuous-batching scheduler: every step some sequences end (left out of the
// reorder) and new ones join. The cache's bookkeeping must stay bounded by the sequences held at
// once, not grow with the number that ever ended (kvmt-server's RSS grew by ~250 KB/s so).
TEST(PagedKVCacheTest, BookkeepingStaysBoundedAsSequencesComeAndGo) {
  auto pool = MakePool(64);
  PagedKVCache cache(pool, kLayout);
  for (int i = 0; i < 6; ++i) cache.AddSequence();
  for (int step = 0; step < 1000; ++step) {
    for (int seq = 0; seq < cache.num_sequences(); ++seq) ASSERT_TRUE(cache.Append(seq).ok());
    // The oldest two end; the others continue and two new sequences join.
    std::vector<int32_t> survivors;
    for (int seq = 2; seq < cache.num_sequences(); ++seq) survivors.push_back(seq);
    ASSERT_TRUE(cache.Reorder(survivors).ok());
    cache.AddSequence();
    cache.AddSequence();
    ASSERT_EQ(cache.num_sequences(), 6);
    EXPECT_LE(cache.table_slots(), 12) << "step " << step;
  }
  EXPECT_LE(pool->stats().used_blocks, 6 * 2);
}

TEST(PagedKVCacheTest, RejectsBadParent) {
  PagedKVCache cache(MakePool(1), kLayout);
  cache.AddSequence();
  EXPECT_FALSE(cache.Reorder(std::vector<int32_t>{1}).ok());
}

TEST(BlockPoolTest, ReservationsBoundAdmission) {
  BlockPool pool(16, 10 * 16 * sizeof(float));
  EXPECT_EQ(pool.total_blocks(), 10);
  EXPECT_TRUE(pool.TryReserve(6));
  EXPECT_FALSE(pool.TryReserve(5));
  EXPECT_FALSE(pool.Reserve(5, absl::Milliseconds(10)));
  EXPECT_FALSE(pool.Reserve(11, absl::InfiniteDuration()));  // Could never fit: no wait.
  pool.Unreserve(6);
  EXPECT_TRUE(pool.Reserve(10, absl::Milliseconds(10)));
  EXPECT_EQ(pool.stats().reserved_blocks, 10);
}

TEST(BlockPoolTest, EvictorIsAskedWhenEmpty) {
  BlockPool pool(16, 2 * 16 * sizeof(float));
  BlockId a = *pool.Allocate();
  BlockId b = *pool.Allocate();
  int evictions = 0;
  pool.SetEvictor([&] {
    if (evictions++ > 0) return false;
    pool.Release(a);
    return true;
  });
  absl::StatusOr<BlockId> c = pool.Allocate();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, a);
  EXPECT_EQ(pool.Allocate().status().code(), absl::StatusCode::kResourceExhausted);
  pool.Release(b);
  pool.Release(*c);
  EXPECT_EQ(pool.stats().used_blocks, 0);
  EXPECT_EQ(pool.stats().peak_used_blocks, 2);
}

}  // namespace
}  // namespace kvmt
