// TranslationBackend: what the file pipeline sends its batches to — the engine in this process
// (LocalBackend) or, in the same shape, a remote server.
#pragma once

#include "absl/status/statusor.h"
#include "kvmt/v1/translation.pb.h"

namespace kvmt {

class TranslationBackend {
 public:
  virtual ~TranslationBackend() = default;

  // One result per request segment, in order. INVALID_ARGUMENT, OUT_OF_RANGE and
  // RESOURCE_EXHAUSTED blame the request's segments; any other error is the backend's own.
  virtual absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) = 0;

  // The source tokens of `segment` as the engine sees them (for sorting and the token budget);
  // an estimate when the backend cannot tell.
  virtual int SourceLength(const v1::Segment& segment) const = 0;
};

}  // namespace kvmt
