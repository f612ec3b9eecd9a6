#include "service/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "service/model_registry.h"

namespace kvmt {
namespace {

const std::vector<double>& SecondsBounds() {
  static const std::vector<double> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60};
  return bounds;
}

const std::vector<double>& BatchBounds() {
  static const std::vector<double> bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  return bounds;
}

std::string Number(double value) {
  if (value == static_cast<double>(static_cast<int64_t>(value))) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.10g", value);
}

// A label value with the escapes of the text format.
std::string Label(absl::string_view value) {
  return absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

void Header(absl::string_view name, absl::string_view type, absl::string_view help,
            std::string& out) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

void Histogram::Render(absl::string_view name, absl::string_view labels, std::string& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string prefix = labels.empty() ? "" : absl::StrCat(labels, ",");
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    absl::StrAppend(&out, name, "_bucket{", prefix, "le=\"", le, "\"} ", cumulative, "\n");
  }
  const std::string braces = labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppend(&out, name, "_sum", braces, " ", Number(sum_), "\n", name, "_count", braces, " ",
                  count_, "\n");
}

Metrics::Metrics() : first_token_seconds_(SecondsBounds()) {}

void Metrics::CountCall(absl::string_view method, absl::StatusCode code, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++calls_[{std::string(method), absl::StatusCodeToString(code)}];
  std::unique_ptr<Histogram>& histogram = call_seconds_[std::string(method)];
  if (histogram == nullptr) histogram = std::make_unique<Histogram>(SecondsBounds());
  histogram->Observe(seconds);
}

void Metrics::ObserveFirstToken(double seconds) { first_token_seconds_.Observe(seconds); }

void Metrics::ObserveBatch(const std::string& model, int segments) {
  Histogram* histogram;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<Histogram>& slot = batch_segments_[model];
    if (slot == nullptr) slot = std::make_unique<Histogram>(BatchBounds());
    histogram = slot.get();
  }
  histogram->Observe(segments);
}

void Metrics::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(mutex_);
  serving_ = serving;
}

std::string Metrics::Render(const ModelRegistry& models) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mutex_);
  Header("kvmt_serving", "gauge", "1 while the health service says SERVING.", out);
  absl::StrAppend(&out, "kvmt_serving ", serving_ ? 1 : 0, "\n");

  Header("kvmt_requests_total", "counter", "Calls handled, by method and gRPC status code.", out);
  for (const auto& [key, count] : calls_) {
    absl::StrAppend(&out, "kvmt_requests_total{method=\"", Label(key.first), "\",code=\"",
                    key.second, "\"} ", count, "\n");
  }
  Header("kvmt_request_duration_seconds", "histogram",
         "Time from a call's arrival to its status, by method.", out);
  for (const auto& [method, histogram] : call_seconds_) {
    histogram->Render("kvmt_request_duration_seconds",
                      absl::StrCat("method=\"", Label(method), "\""), out);
  }
  Header("kvmt_stream_first_token_seconds", "histogram",
         "Time from a TranslateStream call's arrival to its first token.", out);
  first_token_seconds_.Render("kvmt_stream_first_token_seconds", "", out);
  Header("kvmt_batch_segments", "histogram", "Segments decoded together, per decoder step.", out);
  for (const auto& [model, histogram] : batch_segments_) {
    histogram->Render("kvmt_batch_segments", absl::StrCat("model=\"", Label(model), "\""), out);
  }

  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const ServedModel&);
  };
  static const Gauge kGauges[] = {
      {"kvmt_queued_segments", "gauge", "Segments waiting for admission.",
       [](const ServedModel& m) { return double(m.scheduler->stats().queued_segments); }},
      {"kvmt_running_segments", "gauge", "Segments in the running batch.",
       [](const ServedModel& m) { return double(m.scheduler->stats().running_segments); }},
      {"kvmt_decoder_steps_total", "counter", "Decoder steps run.",
       [](const ServedModel& m) { return double(m.scheduler->stats().steps); }},
      {"kvmt_segments_total", "counter", "Segments translated to the end.",
       [](const ServedModel& m) { return double(m.translator->stats().segments); }},
      {"kvmt_source_tokens_total", "counter", "Source tokens of the segments translated.",
       [](const ServedModel& m) { return double(m.translator->stats().source_tokens); }},
      {"kvmt_target_tokens_total", "counter", "Target tokens of the best hypotheses.",
       [](const ServedModel& m) { return double(m.translator->stats().target_tokens); }},
      {"kvmt_cache_capacity_bytes", "gauge", "Size of the K/V block pool.",
       [](const ServedModel& m) {
         const BlockPoolStats s = m.translator->cache_stats().pool;
         return double(s.total_blocks * s.block_bytes);
       }},
      {"kvmt_cache_used_bytes", "gauge", "Pool blocks held by decoding and the source cache.",
       [](const ServedModel& m) {
         return double(m.translator->cache_stats().pool.bytes_in_use());
       }},
      {"kvmt_cache_peak_used_bytes", "gauge", "Most pool bytes ever in use.",
       [](const ServedModel& m) { return double(m.translator->cache_stats().pool.peak_bytes()); }},
      {"kvmt_cache_reserved_bytes", "gauge", "Pool bytes promised to admitted segments.",
       [](const ServedModel& m) {
         const BlockPoolStats s = m.translator->cache_stats().pool;
         return double(s.reserved_blocks * s.block_bytes);
       }},
      {"kvmt_source_cache_bytes", "gauge", "Bytes of encoder results kept in the source cache.",
       [](const ServedModel& m) { return double(m.translator->cache_stats().source_cache.bytes); }},
      {"kvmt_source_cache_hits_total", "counter", "Source cache lookups that found the source.",
       [](const ServedModel& m) { return double(m.translator->cache_stats().source_cache.hits); }},
      {"kvmt_source_cache_misses_total", "counter", "Source cache lookups that did not.",
       [](const ServedModel& m) {
         return double(m.translator->cache_stats().source_cache.misses);
       }},
      {"kvmt_source_cache_hit_rate", "gauge", "Hits / lookups of the source cache so far.",
       [](const ServedModel& m) { return m.translator->cache_stats().source_cache.hit_rate(); }},
  };
  for (const Gauge& gauge : kGauges) {
    Header(gauge.name, gauge.type, gauge.help, out);
    for (const auto& model : models.models()) {
      absl::StrAppend(&out, gauge.name, "{model=\"", Label(model->name), "\"} ",
                      Number(gauge.value(*model)), "\n");
    }
  }
  return out;
}

}  // namespace kvmt
