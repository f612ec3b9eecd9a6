// Running kvmt-translate as a subprocess in the tool tests: files in the test's temporary
// folder, the command line quoted for the shell, exit code and both output streams captured.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/tools/temp_path.h"

namespace kvmt {

inline constexpr char kTransliterationModel[] =
    KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
}

inline std::string ShellQuote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// Runs kvmt-translate with `args` and `stdin_text` on its standard input.
inline ToolRun RunTool(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  const std::string in = TempPath("stdin");
  const std::string out = TempPath("stdout");
  const std::string err = TempPath("stderr");
  WriteFile(in, stdin_text);
  std::string command = ShellQuote(KVMT_TRANSLATE_BIN);
  for (const std::string& arg : args) absl::StrAppend(&command, " ", ShellQuote(arg));
  absl::StrAppend(&command, " <", ShellQuote(in), " >", ShellQuote(out), " 2>", ShellQuote(err));
  const int status = std::system(command.c_str());
  ToolRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = ReadFile(out);
  run.err = ReadFile(err);
  return run;
}

// The lines of `text`, which must end with '\n' unless it is empty.
inline std::vector<std::string> Lines(const std::string& text) {
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "output does not end with a newline";
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // After the last '\n'.
  return lines;
}

}  // namespace kvmt
