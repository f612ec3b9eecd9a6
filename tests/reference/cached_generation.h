// Output of the Python generators, shared by every process of one build: ctest runs each test
// case of a binary in a process of its own, and generating a model takes seconds.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace kvmt::testing {

// A directory holding what the shell command `make_command(dir)` wrote into `dir` (make_command
// only builds the string: it is also called with a stand-in directory). The command
// runs only when no earlier run with the same `key`, command and scripts in tests/reference/
// left a complete directory in KVMT_REFERENCE_DATA_DIR (the build tree's reference_data/, which
// the sanitizer builds share with the plain one); concurrent first runs each generate and one
// wins the rename.
inline absl::StatusOr<std::string> CachedGeneration(
    const std::string& key, const std::function<std::string(const std::string&)>& make_command) {
  namespace fs = std::filesystem;
  // The command itself (with a stand-in directory) is part of the fingerprint: changing a flag
  // must not reuse what the old flags generated.
  std::string fingerprint = absl::StrCat(key, "\n", make_command("<dir>"), "\n");
  for (const char* script : {"make_marian_model.py", "marian_reference.py", "safetensors_io.py"}) {
    std::ifstream in(absl::StrCat(KVMT_SOURCE_DIR, "/tests/reference/", script));
    std::stringstream text;
    text << in.rdbuf();
    fingerprint += text.str();
  }
  const fs::path dir = fs::path(KVMT_REFERENCE_DATA_DIR) /
                       absl::StrCat(std::hash<std::string>()(fingerprint));
  if (fs::exists(dir / ".complete")) return dir.string();

  const fs::path scratch = absl::StrCat(dir.string(), ".tmp", getpid());
  std::error_code error;
  fs::remove_all(scratch, error);
  fs::create_directories(scratch, error);
  if (error) return absl::InternalError(absl::StrCat(scratch.string(), ": ", error.message()));
  const std::string command = make_command(scratch.string());
  if (std::system(command.c_str()) != 0) {
    fs::remove_all(scratch, error);
    return absl::InternalError(absl::StrCat("failed: ", command));
  }
  std::ofstream(scratch / ".complete") << key;
  fs::rename(scratch, dir, error);
  if (error) fs::remove_all(scratch, error);  // Another process finished first.
  if (!fs::exists(dir / ".complete")) {
    return absl::InternalError(absl::StrCat(dir.string(), ": generated data went missing"));
  }
  return dir.string();
}

}  // namespace kvmt::testing
