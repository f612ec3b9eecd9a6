#include "cache/source_cache.h"

#include "gtest/gtest.h"

namespace kvmt {
namespace {

constexpr KVBlockLayout kLayout{1, 2, 4};

class SourceCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<const EncodedSource> MakeSource(int length) {
    std::vector<BlockId> blocks;
    for (int64_t i = 0; i < kLayout.blocks_for(length); ++i) blocks.push_back(*pool_->Allocate());
    return std::make_shared<const EncodedSource>(pool_, kLayout, length, std::move(blocks),
                                                 Tensor({length, kLayout.d_model}));
  }
  static int64_t Bytes(int length) {
    return kLayout.blocks_for(length) * kLayout.block_floats() * 4 + length * kLayout.d_model * 4;
  }

  std::shared_ptr<BlockPool> pool_ =
      std::make_shared<BlockPool>(kLayout.block_floats(), 64 * kLayout.block_floats() * 4);
};

TEST_F(SourceCacheTest, ExactHitsOnlyAndCounts) {
  SourceCache cache(1 << 20);
  EXPECT_EQ(cache.Lookup({1, 2, 3}), nullptr);
  auto source = MakeSource(3);
  cache.Insert({1, 2, 3}, source);
  EXPECT_EQ(cache.Lookup({1, 2, 3}), source);
  EXPECT_EQ(cache.Lookup({1, 2}), nullptr);
  EXPECT_EQ(cache.Lookup({1, 2, 3, 4}), nullptr);
  const SourceCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.misses, 3);
  EXPECT_EQ(stats.entries, 1);
  EXPECT_EQ(stats.bytes, Bytes(3));
  EXPECT_DOUBLE_EQ(stats.hit_rate(), 0.25);
}

TEST_F(SourceCacheTest, EvictsLeastRecentlyUsedBeyondItsLimit) {
  SourceCache cache(2 * Bytes(5));
  cache.Insert({1}, MakeSource(5));
  cache.Insert({2}, MakeSource(5));
  EXPECT_NE(cache.Lookup({1}), nullptr);  // {2} is now the least recently used.
  cache.Insert({3}, MakeSource(5));
  EXPECT_NE(cache.Lookup({1}), nullptr);
  EXPECT_EQ(cache.Lookup({2}), nullptr);
  EXPECT_NE(cache.Lookup({3}), nullptr);
  EXPECT_LE(cache.stats().bytes, 2 * Bytes(5));
  EXPECT_EQ(pool_->stats().used_blocks, 4);  // The evicted source's blocks went back.
}

TEST_F(SourceCacheTest, EvictIdleSparesSourcesInUse) {
  SourceCache cache(1 << 20);
  auto in_use = MakeSource(4);
  cache.Insert({1}, in_use);
  cache.Insert({2}, MakeSource(4));
  EXPECT_TRUE(cache.EvictIdle());   // Drops {2}, which nobody else holds.
  EXPECT_FALSE(cache.EvictIdle());  // {1} is still used by a segment.
  EXPECT_NE(cache.Lookup({1}), nullptr);
  in_use.reset();
  EXPECT_TRUE(cache.EvictIdle());
  EXPECT_EQ(pool_->stats().used_blocks, 0);
}

TEST_F(SourceCacheTest, ZeroLimitDisables) {
  SourceCache cache(0);
  cache.Insert({1}, MakeSource(2));
  EXPECT_EQ(cache.Lookup({1}), nullptr);
  EXPECT_EQ(pool_->stats().used_blocks, 0);
}

}  // namespace
}  // namespace kvmt
