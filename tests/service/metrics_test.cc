// Metrics: histogram buckets are cumulative and the exposition follows the text format.
#include "service/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, RendersCumulativeBucketsSumAndCount) {
  Histogram histogram({1, 2, 4});
  for (double value : {0.5, 1.0, 3.0, 3.5, 100.0}) histogram.Observe(value);
  std::string out;
  histogram.Render("x", "model=\"m\"", out);
  EXPECT_EQ(out,
            "x_bucket{model=\"m\",le=\"1\"} 2\n"
            "x_bucket{model=\"m\",le=\"2\"} 2\n"
            "x_bucket{model=\"m\",le=\"4\"} 4\n"
            "x_bucket{model=\"m\",le=\"+Inf\"} 5\n"
            "x_sum{model=\"m\"} 108\n"
            "x_count{model=\"m\"} 5\n");
  std::string unlabelled;
  Histogram({0.25}).Render("y", "", unlabelled);
  EXPECT_THAT(unlabelled, HasSubstr("y_bucket{le=\"0.25\"} 0\n"));
  EXPECT_THAT(unlabelled, HasSubstr("y_count 0\n"));
}

}  // namespace
}  // namespace kvmt
