// BearerToken: the shared secret of --auth-token-file and the check of a call's
// "authorization: Bearer <token>" metadata, compared in constant time.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvmt {

class BearerToken {
 public:
  // The file's content without surrounding whitespace; an empty or unreadable file is an error.
  static absl::StatusOr<BearerToken> FromFile(const std::string& path);
  explicit BearerToken(std::string token) : token_(std::move(token)) {}

  // OK when `authorization` (the metadata value, if any) is "Bearer <the token>"; otherwise
  // UNAUTHENTICATED saying whether it was missing, malformed or wrong.
  absl::Status Check(std::optional<absl::string_view> authorization) const;

 private:
  std::string token_;
};

// Equality whose running time depends on the length of `expected` only, not on where `given`
// first differs.
bool ConstantTimeEquals(absl::string_view given, absl::string_view expected);

}  // namespace kvmt
