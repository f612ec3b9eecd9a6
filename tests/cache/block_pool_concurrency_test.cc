// BlockPool under threads: admission waits for blocks that other threads give back, and many
// threads reserving, allocating, sharing and releasing blocks leave the pool exactly as it was.
// Labelled `concurrency`: scripts/test.sh --tsan runs it under ThreadSanitizer.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "cache/block_pool.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

constexpr int64_t kBlockFloats = 16;

// Reserve(blocks, timeout) on a full pool must still be waiting after a while, and must succeed
// once the blocks are given back.
void ExpectWaitsUntilUnreserved(absl::Duration timeout) {
  BlockPool pool(kBlockFloats, 10 * kBlockFloats * sizeof(float));
  ASSERT_TRUE(pool.TryReserve(10));
  std::atomic<int> result{-1};
  std::thread waiter([&] { result = pool.Reserve(4, timeout) ? 1 : 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(result.load(), -1) << "Reserve(" << timeout << ") returned before blocks were free";
  pool.Unreserve(10);
  waiter.join();
  EXPECT_EQ(result.load(), 1) << timeout;
  EXPECT_EQ(pool.stats().reserved_blocks, 4);
}

TEST(BlockPoolConcurrencyTest, ReserveWithoutDeadlineWaitsForBlocksGivenBack) {
  ExpectWaitsUntilUnreserved(absl::InfiniteDuration());
}

TEST(BlockPoolConcurrencyTest, ACenturyLongTimeoutDoesNotOverflowTheDeadline) {
  ExpectWaitsUntilUnreserved(absl::Hours(24 * 365 * 200));
  ExpectWaitsUntilUnreserved(absl::Hours(24));
}

TEST(BlockPoolConcurrencyTest, ATimedReserveGivesUpAfterItsTimeout) {
  BlockPool pool(kBlockFloats, 10 * kBlockFloats * sizeof(float));
  ASSERT_TRUE(pool.TryReserve(8));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(pool.Reserve(4, absl::Milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  EXPECT_EQ(pool.stats().reserved_blocks, 8);
}

TEST(BlockPoolConcurrencyTest, ThreadsSharingThePoolLeaveItAsTheyFoundIt) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  constexpr int64_t kPerRound = 3;
  BlockPool pool(kBlockFloats, 8 * kBlockFloats * sizeof(float));  // Less than 4 x 3: threads wait.
  std::atomic<int> corrupted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        ASSERT_TRUE(pool.Reserve(kPerRound, absl::InfiniteDuration()));
        std::vector<BlockId> blocks;
        for (int64_t i = 0; i < kPerRound; ++i) {
          absl::StatusOr<BlockId> block = pool.Allocate();
          ASSERT_TRUE(block.ok()) << block.status();
          blocks.push_back(*block);
          for (int64_t f = 0; f < kBlockFloats; ++f) pool.data(*block)[f] = static_cast<float>(t);
        }
        pool.AddRef(blocks[0]);  // A second holder, as a beam sharing its prefix.
        for (const BlockId block : blocks) {
          for (int64_t f = 0; f < kBlockFloats; ++f) {
            if (pool.data(block)[f] != static_cast<float>(t)) ++corrupted;
          }
          pool.Release(block);
        }
        pool.Release(blocks[0]);
        pool.Unreserve(kPerRound);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(corrupted.load(), 0) << "a block was handed to two threads at once";
  const BlockPoolStats stats = pool.stats();
  EXPECT_EQ(stats.used_blocks, 0);
  EXPECT_EQ(stats.reserved_blocks, 0);
  EXPECT_LE(stats.peak_used_blocks, 8);
}

}  // namespace
}  // namespace kvmt
