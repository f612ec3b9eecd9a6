#include "tools/kebab_flags.h"

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace kvmt {

std::vector<std::string> KebabToSnakeArgs(int argc, const char* const* argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    const size_t name_begin = arg.find_first_not_of('-');
    if (name_begin == 0 || name_begin > 2 || name_begin == std::string::npos ||
        !absl::ascii_isalpha(static_cast<unsigned char>(arg[name_begin]))) {
      continue;
    }
    const size_t name_end = std::min(arg.find('=', name_begin), arg.size());
    std::replace(arg.begin() + static_cast<std::ptrdiff_t>(name_begin),
                 arg.begin() + static_cast<std::ptrdiff_t>(name_end), '-', '_');
  }
  return args;
}

bool AsksForHelp(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") return false;
    if (args[i] == "-h" || args[i] == "--help" || args[i] == "-help") return true;
  }
  return false;
}

std::string KebabUsage(absl::string_view defining_file) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // absl reports the file name normalised (the leading part of the path cut), hence a suffix.
    const std::string file = flag->Filename();
    if (!file.empty() && absl::EndsWith(defining_file, file)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  std::string usage = absl::StrCat(absl::ProgramUsageMessage(), "\n\nFlags:\n");
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string default_value = flag->DefaultValue();
    absl::StrAppend(
        &usage, "  --", absl::StrReplaceAll(flag->Name(), {{"_", "-"}}), "\n      ", flag->Help(),
        default_value.empty() ? "" : absl::StrCat(" (default: ", default_value, ")"), "\n");
  }
  return usage;
}

}  // namespace kvmt
