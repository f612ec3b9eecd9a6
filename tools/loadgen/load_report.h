// LoadReport: what one kvmt-loadgen run measured (calls, segments, target tokens, latencies,
// errors by status code) and its two renderings, a text summary for people and JSON for scripts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace kvmt {

struct LoadReport {
  std::string server;
  int concurrency = 0;
  bool stream = false;
  double seconds = 0;                     // From the first call's start to the last call's end.
  int64_t requests = 0;                   // Calls that ended, whatever their status.
  int64_t ok_requests = 0;                // Calls that ended with OK and one result per segment.
  int64_t segments = 0;                   // Results received in OK calls.
  int64_t target_tokens = 0;              // Tokens of the best hypothesis of those results.
  std::vector<double> latency_ms;         // Of OK calls: start to status.
  std::vector<double> first_response_ms;  // Of OK streaming calls: start to first message.
  std::map<std::string, int64_t> errors;  // Status code name -> calls that ended with it.
  std::map<std::string, std::string> first_error_message;  // Status code name -> an example.
};

// The nearest-rank percentile `p` (0 < p <= 100) of `values`; 0 when there are none.
double Percentile(std::vector<double> values, double p);

// Rates, percentiles and errors, one quantity per line.
std::string FormatText(const LoadReport& report);
// The same figures as one JSON object: the fields above by their names (latencies as p50, p95,
// p99, max and mean), plus requests_per_second, segments_per_second, target_tokens_per_second.
nlohmann::json ToJson(const LoadReport& report);

}  // namespace kvmt
