#include "cache/block_table_cache.h"

#include <vector>

#include "gtest/gtest.h"

namespace kvmt {
namespace {

constexpr int kLayers = 2;
constexpr int kD = 3;
constexpr int kBlock = 4;

// Writes a value identifying (tag, layer, pos) into every element of the K and V rows.
void Fill(BlockTableCache& cache, int seq, int pos, float tag) {
  for (int l = 0; l < kLayers; ++l) {
    for (int i = 0; i < kD; ++i) {
      cache.KeyRow(seq, l, pos)[i] = tag + l * 0.1f + pos * 0.001f;
      cache.ValueRow(seq, l, pos)[i] = -(tag + l * 0.1f + pos * 0.001f);
    }
  }
}

void ExpectRows(const BlockTableCache& cache, int seq, int length, float tag) {
  ASSERT_EQ(cache.length(seq), length);
  for (int pos = 0; pos < length; ++pos) {
    for (int l = 0; l < kLayers; ++l) {
      const float* k = cache.KeyBlock(seq, l, pos / kBlock) + (pos % kBlock) * kD;
      const float* v = cache.ValueBlock(seq, l, pos / kBlock) + (pos % kBlock) * kD;
      EXPECT_FLOAT_EQ(k[0], tag + l * 0.1f + pos * 0.001f) << seq << " " << l << " " << pos;
      EXPECT_FLOAT_EQ(v[kD - 1], -(tag + l * 0.1f + pos * 0.001f));
    }
  }
}

TEST(BlockTableCacheTest, AppendsAcrossBlockBoundaries) {
  BlockTableCache cache(kLayers, kD, kBlock);
  const int seq = cache.AddSequence();
  for (int pos = 0; pos < 9; ++pos) {
    absl::StatusOr<int> appended = cache.Append(seq);
    ASSERT_TRUE(appended.ok());
    EXPECT_EQ(*appended, pos);
    Fill(cache, seq, pos, 1.0f);
  }
  ExpectRows(cache, seq, 9, 1.0f);
  EXPECT_EQ(cache.bytes_reserved(), 3 * kLayers * 2 * kBlock * kD * sizeof(float));
}

TEST(BlockTableCacheTest, ReorderForksDropsAndKeepsRows) {
  BlockTableCache cache(kLayers, kD, kBlock);
  for (int s = 0; s < 3; ++s) {
    cache.AddSequence();
    for (int pos = 0; pos < 6; ++pos) {
      ASSERT_TRUE(cache.Append(s).ok());
      Fill(cache, s, pos, 10.0f * (s + 1));
    }
  }
  // Sequence 2 forks twice, 0 continues, 1 dies.
  const std::vector<int32_t> parents = {2, 0, 2};
  ASSERT_TRUE(cache.Reorder(parents).ok());
  ASSERT_EQ(cache.num_sequences(), 3);
  ExpectRows(cache, 0, 6, 30.0f);
  ExpectRows(cache, 1, 6, 10.0f);
  ExpectRows(cache, 2, 6, 30.0f);
  // Only the second child of sequence 2 was copied: 6 rows x 2 layers x K,V.
  EXPECT_EQ(cache.bytes_copied(), 6 * kLayers * 2 * kD * sizeof(float));

  // Forked children diverge without affecting each other.
  ASSERT_TRUE(cache.Append(0).ok());
  ASSERT_TRUE(cache.Append(2).ok());
  Fill(cache, 0, 6, 30.0f);
  Fill(cache, 2, 6, 30.0f);
  cache.KeyRow(2, 0, 5)[0] = 99.0f;
  EXPECT_FLOAT_EQ(cache.KeyRow(0, 0, 5)[0], 30.0f + 0.005f);
}

TEST(BlockTableCacheTest, FreedBlocksAreReused) {
  BlockTableCache cache(kLayers, kD, kBlock);
  cache.AddSequence();
  cache.AddSequence();
  for (int pos = 0; pos < 8; ++pos) {
    ASSERT_TRUE(cache.Append(0).ok());
    ASSERT_TRUE(cache.Append(1).ok());
  }
  const int64_t reserved = cache.bytes_reserved();
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(cache.Reorder(std::vector<int32_t>{0, 0}).ok());
  }
  EXPECT_EQ(cache.bytes_reserved(), reserved);
}

TEST(BlockTableCacheTest, RejectsBadParent) {
  BlockTableCache cache(kLayers, kD, kBlock);
  cache.AddSequence();
  EXPECT_FALSE(cache.Reorder(std::vector<int32_t>{1}).ok());
}

}  // namespace
}  // namespace kvmt
