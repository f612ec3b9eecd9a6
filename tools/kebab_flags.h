// Command-line flags spelled in --kebab-case (the project's convention) over absl flags, whose
// names have to be C++ identifiers and are therefore snake_case.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kvmt {

// argv with every flag name (before a lone "--") rewritten from kebab-case to snake_case:
// "--beam-size=4" -> "--beam_size=4", "--no-cache" -> "--no_cache". Text after '=' and arguments
// that do not start with "-<letter>" are left alone, so a value that itself starts with
// "-<letter>" must be given as "--flag=value".
std::vector<std::string> KebabToSnakeArgs(int argc, const char* const* argv);

// Whether `args` (as returned by KebabToSnakeArgs) ask for help: -h, --help, -help.
bool AsksForHelp(const std::vector<std::string>& args);

// The program's usage message followed by every flag defined in `defining_file` (pass
// __FILE__), sorted, in kebab-case with its help text and default value.
std::string KebabUsage(absl::string_view defining_file);

}  // namespace kvmt
