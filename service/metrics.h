// Metrics: the service's counters and histograms, and their Prometheus text exposition together
// with each model's gauges (queue, batch, cache memory, source-cache hit rate). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvmt {

class ModelRegistry;

// Cumulative buckets with upper bounds `bounds` (ascending); +Inf is implied.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket, _sum and _count lines of `name` with `labels` (`key="value",...`).
  void Render(absl::string_view name, absl::string_view labels, std::string& out) const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<int64_t> counts_;  // Per bucket, not cumulative; the last one is +Inf.
  double sum_ = 0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  // A finished call of `method` with its status and duration.
  void CountCall(absl::string_view method, absl::StatusCode code, double seconds);
  // The time from a stream's start to its first token.
  void ObserveFirstToken(double seconds);
  // A decoder step of `model` over `segments` segments.
  void ObserveBatch(const std::string& model, int segments);
  void SetServing(bool serving);

  // Every metric in the Prometheus text format (version 0.0.4).
  std::string Render(const ModelRegistry& models) const;

 private:
  mutable std::mutex mutex_;
  bool serving_ = false;
  std::map<std::pair<std::string, std::string>, int64_t> calls_;      // (method, code) -> count.
  std::map<std::string, std::unique_ptr<Histogram>> call_seconds_;    // By method.
  std::map<std::string, std::unique_ptr<Histogram>> batch_segments_;  // By model.
  Histogram first_token_seconds_;
};

}  // namespace kvmt
