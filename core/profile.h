// Profile: wall time per stage of translation, summed over all calls while enabled. Off by
// default; a disabled ScopedStageTimer costs one relaxed atomic load. For kvmt-bench's
// breakdown; not meant for concurrent translations (the stages then overlap).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace kvmt {

enum class Stage {
  kEncoder,
  kSelfAttention,     // Norm, QKV projection, cache write, attention, output projection.
  kCrossAttention,    // Norm, query projection, attention over the source, output projection.
  kFeedForward,       // Norm, both FFN projections.
  kOutputProjection,  // Final norm and the vocabulary projection.
  kSearch,            // Log-softmax, masks, top-k, hypothesis bookkeeping, cache reorder.
  kCount
};

const char* StageName(Stage stage);

class Profile {
 public:
  static void Enable(bool enabled);
  static bool enabled() { return enabled_.load(std::memory_order_relaxed); }
  static void Reset();
  static double Seconds(Stage stage);
  static void Add(Stage stage, int64_t nanoseconds);

 private:
  static std::atomic<bool> enabled_;
  static std::array<std::atomic<int64_t>, static_cast<size_t>(Stage::kCount)> nanoseconds_;
};

class ScopedStageTimer {
 public:
  explicit ScopedStageTimer(Stage stage) : stage_(stage), active_(Profile::enabled()) {
    if (active_) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedStageTimer() {
    if (!active_) return;
    Profile::Add(stage_, std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - start_)
                             .count());
  }
  ScopedStageTimer(const ScopedStageTimer&) = delete;
  ScopedStageTimer& operator=(const ScopedStageTimer&) = delete;

 private:
  const Stage stage_;
  const bool active_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kvmt
