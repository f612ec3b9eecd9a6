#include "core/profile.h"

namespace kvmt {

std::atomic<bool> Profile::enabled_{false};
std::array<std::atomic<int64_t>, static_cast<size_t>(Stage::kCount)> Profile::nanoseconds_{};

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kEncoder:
      return "encoder";
    case Stage::kSelfAttention:
      return "self-attention";
    case Stage::kCrossAttention:
      return "cross-attention";
    case Stage::kFeedForward:
      return "feed-forward";
    case Stage::kOutputProjection:
      return "output projection";
    case Stage::kSearch:
      return "search";
    case Stage::kCount:
      break;
  }
  return "?";
}

void Profile::Enable(bool enabled) { enabled_.store(enabled, std::memory_order_relaxed); }

void Profile::Reset() {
  for (auto& value : nanoseconds_) value.store(0, std::memory_order_relaxed);
}

double Profile::Seconds(Stage stage) {
  return static_cast<double>(nanoseconds_[static_cast<size_t>(stage)].load()) * 1e-9;
}

void Profile::Add(Stage stage, int64_t nanoseconds) {
  nanoseconds_[static_cast<size_t>(stage)].fetch_add(nanoseconds, std::memory_order_relaxed);
}

}  // namespace kvmt
