// OutputFile: where the output lines go. A file FILE is written as FILE.partial and renamed to
// FILE when the run is complete; Resume reopens FILE.partial, cuts off a torn last line and
// continues after its last complete line ('\n'-terminated). Every Append is one write(2) of whole
// lines, so a killed process loses nothing it appended; fsync comes at Commit, before the rename.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvmt {

class OutputFile {
 public:
  // Standard output: appended to directly, nothing to rename.
  static std::unique_ptr<OutputFile> Stdout();
  // Creates (or empties) `path`.partial.
  static absl::StatusOr<std::unique_ptr<OutputFile>> Create(const std::string& path);
  // Reopens `path`.partial after its last complete line, or creates it when there is none.
  static absl::StatusOr<std::unique_ptr<OutputFile>> Resume(const std::string& path);
  static std::string PartialPath(const std::string& path) { return path + ".partial"; }

  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Appends `text`, whole lines, in one write(2) (repeated only if the kernel takes less).
  absl::Status Append(absl::string_view text);
  // Flushes to disk (fsync) and renames FILE.partial to FILE, then syncs the directory.
  // Nothing to do for standard output.
  absl::Status Commit();

  // Lines found complete by Resume (0 otherwise), and the bytes of a torn line it cut off.
  int64_t resumed_lines() const { return resumed_lines_; }
  int64_t dropped_bytes() const { return dropped_bytes_; }
  // What messages call it: "<stdout>" or FILE.partial.
  const std::string& name() const { return name_; }
  bool is_file() const { return !path_.empty(); }

 private:
  OutputFile(int fd, std::string path, std::string name);

  int fd_;
  const std::string path_;  // Empty for standard output.
  const std::string name_;
  int64_t resumed_lines_ = 0;
  int64_t dropped_bytes_ = 0;
};

}  // namespace kvmt
