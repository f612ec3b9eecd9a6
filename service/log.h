// Server log: one timestamped line per event on stderr ("2024-05-02T10:11:12.345Z I message"),
// written whole even when several threads log at once.
#pragma once

#include "absl/strings/string_view.h"

namespace kvmt {

void LogInfo(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace kvmt
