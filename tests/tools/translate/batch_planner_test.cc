#include "tools/translate/batch_planner.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace kvmt {
namespace {

std::vector<WindowSegment> Segments(const std::vector<int>& lengths, int groups = 1) {
  std::vector<WindowSegment> segments;
  for (size_t i = 0; i < lengths.size(); ++i) {
    segments.push_back(
        WindowSegment{static_cast<int>(i), 0, lengths[i], static_cast<int>(i) % groups});
  }
  return segments;
}

// Every segment exactly once, and each batch within the limits and of one group.
void ExpectValid(const std::vector<std::vector<WindowSegment>>& batches, size_t count,
                 const BatchLimits& limits) {
  std::set<int> seen;
  for (const std::vector<WindowSegment>& batch : batches) {
    ASSERT_FALSE(batch.empty());
    EXPECT_LE(static_cast<int>(batch.size()), limits.max_segments);
    int longest = 0;
    for (const WindowSegment& segment : batch) {
      EXPECT_TRUE(seen.insert(segment.line).second) << "line " << segment.line << " twice";
      EXPECT_EQ(segment.group, batch.front().group);
      longest = std::max(longest, segment.length);
    }
    if (limits.max_tokens > 0 && batch.size() > 1) {
      EXPECT_LE(static_cast<int64_t>(batch.size()) * longest, limits.max_tokens);
    }
  }
  EXPECT_EQ(seen.size(), count);
}

TEST(BatchPlannerTest, SortsByLengthAndCutsAtTheSegmentCount) {
  const BatchLimits limits{2, 0};
  const auto batches = PlanBatches(Segments({5, 1, 4, 2, 3}), limits);
  ExpectValid(batches, 5, limits);
  ASSERT_EQ(batches.size(), 3u);
  std::vector<std::vector<int>> lengths;
  for (const auto& batch : batches) {
    std::vector<int> batch_lengths;
    for (const WindowSegment& segment : batch) batch_lengths.push_back(segment.length);
    lengths.push_back(batch_lengths);
  }
  EXPECT_EQ(lengths, (std::vector<std::vector<int>>{{1, 2}, {3, 4}, {5}}));
}

TEST(BatchPlannerTest, KeepsThePaddedTokensWithinTheBudget) {
  const BatchLimits limits{100, 12};
  // Sorted: 2 2 3 3 6 7 20. {2,2,3,3} pads to 12; {6} then {7}: 2 x 7 = 14 > 12; 20 alone.
  const auto batches = PlanBatches(Segments({3, 20, 2, 6, 3, 2, 7}), limits);
  ExpectValid(batches, 7, limits);
  std::vector<size_t> sizes;
  for (const auto& batch : batches) sizes.push_back(batch.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 1, 1, 1}));
  EXPECT_EQ(batches.back().front().length, 20);  // Over the budget: alone.
}

TEST(BatchPlannerTest, NeverMixesGroups) {
  const BatchLimits limits{8, 0};
  const auto batches = PlanBatches(Segments({1, 1, 1, 1, 1, 1}, 3), limits);
  ExpectValid(batches, 6, limits);
  EXPECT_EQ(batches.size(), 3u);
}

TEST(BatchPlannerTest, TiesKeepTheInputOrder) {
  const auto batches = PlanBatches(Segments({4, 4, 4, 4}), BatchLimits{3, 0});
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0][0].line, 0);
  EXPECT_EQ(batches[0][1].line, 1);
  EXPECT_EQ(batches[0][2].line, 2);
  EXPECT_EQ(batches[1][0].line, 3);
}

TEST(BatchPlannerTest, ManyRandomWindowsStayValid) {
  unsigned state = 12345;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return static_cast<int>((state >> 16) % 300);
  };
  for (int round = 0; round < 50; ++round) {
    std::vector<int> lengths;
    const int count = 1 + next() % 200;
    for (int i = 0; i < count; ++i) lengths.push_back(1 + next());
    const BatchLimits limits{1 + next() % 40, next() % 2 == 0 ? 0 : int64_t{1 + next() * 4}};
    const auto batches = PlanBatches(Segments(lengths, 1 + next() % 3), limits);
    ExpectValid(batches, lengths.size(), limits);
  }
}

TEST(BatchPlannerTest, NoSegmentsNoBatches) {
  EXPECT_TRUE(PlanBatches({}, BatchLimits{4, 0}).empty());
}

}  // namespace
}  // namespace kvmt
