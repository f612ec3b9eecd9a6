#include "tools/translate/batch_planner.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace kvmt {

std::vector<std::vector<WindowSegment>> PlanBatches(std::vector<WindowSegment> segments,
                                                    const BatchLimits& limits) {
  std::stable_sort(segments.begin(), segments.end(),
                   [](const WindowSegment& a, const WindowSegment& b) {
                     return std::tie(a.group, a.length) < std::tie(b.group, b.length);
                   });
  std::vector<std::vector<WindowSegment>> batches;
  std::vector<WindowSegment> batch;
  for (const WindowSegment& segment : segments) {
    if (!batch.empty()) {
      // Sorted ascending, so `segment` is the batch's longest.
      const int64_t padded = static_cast<int64_t>(batch.size() + 1) * segment.length;
      if (segment.group != batch.front().group ||
          static_cast<int>(batch.size()) >= limits.max_segments ||
          (limits.max_tokens > 0 && padded > limits.max_tokens)) {
        batches.push_back(std::move(batch));
        batch.clear();
      }
    }
    batch.push_back(segment);
  }
  if (!batch.empty()) batches.push_back(std::move(batch));
  return batches;
}

}  // namespace kvmt
