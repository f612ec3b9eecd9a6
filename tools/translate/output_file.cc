#include "tools/translate/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kvmt {
namespace {

// Call right after the failing call: `errno` is read first thing.
absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  const int error = errno;
  return absl::ErrnoToStatus(error, absl::StrCat("cannot ", what, " '", path, "'"));
}

}  // namespace

OutputFile::OutputFile(int fd, std::string path, std::string name)
    : fd_(fd), path_(std::move(path)), name_(std::move(name)) {}

OutputFile::~OutputFile() {
  if (fd_ > STDERR_FILENO) close(fd_);
}

std::unique_ptr<OutputFile> OutputFile::Stdout() {
  return std::unique_ptr<OutputFile>(new OutputFile(STDOUT_FILENO, "", "<stdout>"));
}

absl::StatusOr<std::unique_ptr<OutputFile>> OutputFile::Create(const std::string& path) {
  const std::string partial = PartialPath(path);
  const int fd = open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create the output file", partial);
  return std::unique_ptr<OutputFile>(new OutputFile(fd, path, partial));
}

absl::StatusOr<std::unique_ptr<OutputFile>> OutputFile::Resume(const std::string& path) {
  const std::string partial = PartialPath(path);
  const int fd = open(partial.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Create(path);
    return ErrnoError("open the partial output", partial);
  }
  std::unique_ptr<OutputFile> file(new OutputFile(fd, path, partial));
  std::vector<char> buffer(size_t{1} << 20);
  int64_t offset = 0;
  int64_t complete_end = 0;  // Just past the last '\n'.
  while (true) {
    const ssize_t got = pread(fd, buffer.data(), buffer.size(), offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read the partial output", partial);
    }
    if (got == 0) break;
    for (ssize_t i = 0; i < got; ++i) {
      if (buffer[static_cast<size_t>(i)] == '\n') {
        ++file->resumed_lines_;
        complete_end = offset + i + 1;
      }
    }
    offset += got;
  }
  file->dropped_bytes_ = offset - complete_end;
  if (file->dropped_bytes_ > 0 && ftruncate(fd, complete_end) != 0) {
    return ErrnoError("cut the torn last line of", partial);
  }
  return file;
}

absl::Status OutputFile::Append(absl::string_view text) {
  while (!text.empty()) {
    const ssize_t written = write(fd_, text.data(), text.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write to", name_);
    }
    text.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status OutputFile::Commit() {
  if (path_.empty()) return absl::OkStatus();
  if (fsync(fd_) != 0) return ErrnoError("flush", name_);
  if (rename(name_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat("cannot rename '", name_, "' to '", path_, "'"));
  }
  // The rename itself is durable only once the directory is.
  std::filesystem::path directory = std::filesystem::path(path_).parent_path();
  if (directory.empty()) directory = ".";
  const int dir_fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError("open the directory", directory.string());
  const int synced = fsync(dir_fd);
  close(dir_fd);
  if (synced != 0) return ErrnoError("flush the directory", directory.string());
  return absl::OkStatus();
}

}  // namespace kvmt
