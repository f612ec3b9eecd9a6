// RunLoad: keeps `concurrency` kvmt.v1.Translator calls in flight against one server (gRPC's
// callback API, no thread per call) until the duration or the request count is reached, then
// waits for the calls in flight and reports what it measured.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvmt/v1/translation.pb.h"
#include "tools/loadgen/load_report.h"

namespace kvmt {

struct LoadOptions {
  std::string server;           // gRPC target: HOST:PORT, dns:///NAME:PORT, unix:PATH.
  std::string load_balancing;   // gRPC policy, e.g. "round_robin"; empty: gRPC's pick_first.
  std::string tls_ca_file;      // PEM roots; non-empty: TLS.
  std::string tls_server_name;  // Name the certificate must carry; empty: the target's host.
  std::string auth_token;       // Non-empty: sent as "authorization: Bearer <token>".
  absl::Duration connect_timeout = absl::Seconds(10);

  std::string model;             // For requests that name none; empty: the server's default.
  v1::DecodingOptions decoding;  // Under each request's own options (field by field).
  bool stream = false;           // TranslateStream instead of Translate.
  absl::Duration deadline = absl::ZeroDuration();  // Per call; zero: none.
  // Above `deadline`: each call's deadline is drawn uniformly from [deadline, deadline_max].
  absl::Duration deadline_max = absl::ZeroDuration();
  // This share of the calls is cancelled by the client at a time drawn uniformly from
  // [0, cancel_within] after its start (a client that gives up or disconnects mid-call).
  double cancel_fraction = 0;
  absl::Duration cancel_within = absl::Milliseconds(500);
  uint64_t seed = 1;  // Of the deadline and cancellation draws, per call.
  // Segment text -> the best hypothesis's text it must get (e.g. kvmt-translate's output); every
  // result received, also before a call fails, is checked. A mismatch is a WRONG_TRANSLATION.
  std::map<std::string, std::string> expected;

  int concurrency = 1;                          // Calls in flight.
  absl::Duration duration = absl::Seconds(10);  // No call starts after this.
  int64_t max_requests = 0;                     // No more calls than this; 0: no limit.
};

// Call i sends requests[i % requests.size()]. Errors: INVALID_ARGUMENT for bad options or no
// requests, NOT_FOUND for an unreadable TLS roots file, UNAVAILABLE when the server cannot be
// reached within connect_timeout. Failed calls are not errors: the report counts them by code.
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::vector<v1::TranslateRequest>& requests);

}  // namespace kvmt
