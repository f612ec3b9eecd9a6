// PlanBatches: the batches of one window of segments. Sorted by length so that a batch pads
// little, cut at a segment count and at a budget of padded source tokens (segments x the longest
// one), and never mixing segments whose decoding options differ (a batch is one request).
#pragma once

#include <cstdint>
#include <vector>

namespace kvmt {

struct WindowSegment {
  int line = 0;     // Index of its line in the window.
  int segment = 0;  // Index in its line's request.
  int length = 0;   // Source tokens.
  int group = 0;    // Segments of one group share their decoding options.
};

struct BatchLimits {
  int max_segments = 32;   // >= 1.
  int64_t max_tokens = 0;  // Padded source tokens; 0: no limit. A longer segment goes alone.
};

// Every segment lands in exactly one batch. Deterministic: ties keep the input order.
std::vector<std::vector<WindowSegment>> PlanBatches(std::vector<WindowSegment> segments,
                                                    const BatchLimits& limits);

}  // namespace kvmt
