#include "tools/loadgen/load_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kvmt {
namespace {

double PerSecond(int64_t count, double seconds) { return seconds > 0 ? count / seconds : 0; }

nlohmann::json Distribution(const std::vector<double>& values) {
  const double mean =
      values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  return {{"p50", Percentile(values, 50)},
          {"p95", Percentile(values, 95)},
          {"p99", Percentile(values, 99)},
          {"max", Percentile(values, 100)},
          {"mean", mean}};
}

std::string DistributionText(const std::vector<double>& values) {
  const nlohmann::json d = Distribution(values);
  return absl::StrFormat("p50 %.1f  p95 %.1f  p99 %.1f  max %.1f  mean %.1f",
                         d["p50"].get<double>(), d["p95"].get<double>(), d["p99"].get<double>(),
                         d["max"].get<double>(), d["mean"].get<double>());
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
  const size_t index = std::clamp<size_t>(rank, 1, values.size()) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

std::string FormatText(const LoadReport& r) {
  std::string out =
      absl::StrFormat("server %s, concurrency %d, %s, %.2f s\n", r.server, r.concurrency,
                      r.stream ? "TranslateStream" : "Translate", r.seconds);
  absl::StrAppendFormat(&out, "requests       %8d  %10.1f /s  (ok %d, errors %d)\n", r.requests,
                        PerSecond(r.requests, r.seconds), r.ok_requests,
                        r.requests - r.ok_requests);
  absl::StrAppendFormat(&out, "segments       %8d  %10.1f /s\n", r.segments,
                        PerSecond(r.segments, r.seconds));
  absl::StrAppendFormat(&out, "target tokens  %8d  %10.1f /s\n", r.target_tokens,
                        PerSecond(r.target_tokens, r.seconds));
  absl::StrAppend(&out, "latency ms     ", DistributionText(r.latency_ms), "\n");
  if (r.stream) {
    absl::StrAppend(&out, "first msg ms   ", DistributionText(r.first_response_ms), "\n");
  }
  for (const auto& [code, count] : r.errors) {
    absl::StrAppend(&out, "error          ", code, " x", count, ": ",
                    r.first_error_message.at(code), "\n");
  }
  return out;
}

nlohmann::json ToJson(const LoadReport& r) {
  nlohmann::json json = {
      {"server", r.server},
      {"concurrency", r.concurrency},
      {"stream", r.stream},
      {"seconds", r.seconds},
      {"requests", r.requests},
      {"ok_requests", r.ok_requests},
      {"segments", r.segments},
      {"target_tokens", r.target_tokens},
      {"requests_per_second", PerSecond(r.requests, r.seconds)},
      {"segments_per_second", PerSecond(r.segments, r.seconds)},
      {"target_tokens_per_second", PerSecond(r.target_tokens, r.seconds)},
      {"latency_ms", Distribution(r.latency_ms)},
      {"errors", r.errors},
      {"first_error_message", r.first_error_message},
  };
  if (r.stream) json["first_response_ms"] = Distribution(r.first_response_ms);
  return json;
}

}  // namespace kvmt
