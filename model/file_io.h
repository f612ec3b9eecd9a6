// Whole small files (configurations, vocabularies) read into memory, with errors that name the
// file: NotFound, PermissionDenied, DataLoss on a read error, InvalidArgument on bad JSON.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kvmt {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// The file parsed as JSON, which must be an object.
absl::StatusOr<nlohmann::json> ReadJsonObject(const std::string& path);

}  // namespace kvmt
