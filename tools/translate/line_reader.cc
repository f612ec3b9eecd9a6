#include "tools/translate/line_reader.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvmt {

LineReader::LineReader(std::istream& in, int64_t max_line_bytes, size_t chunk_bytes)
    : in_(in), max_line_bytes_(max_line_bytes), buffer_(chunk_bytes > 0 ? chunk_bytes : 1) {}

absl::StatusOr<bool> LineReader::Fill() {
  if (at_end_) return false;
  in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  if (in_.bad()) {
    return absl::DataLossError(
        absl::StrCat("cannot read the input after line ", lines_read_, ": ", std::strerror(errno)));
  }
  begin_ = 0;
  end_ = static_cast<size_t>(in_.gcount());
  if (end_ == 0) at_end_ = true;
  return end_ > 0;
}

absl::StatusOr<bool> LineReader::Next(InputLine& line) {
  line.text.clear();
  line.bytes = 0;
  line.over_limit = false;
  bool started = false;
  while (true) {
    if (begin_ == end_) {
      absl::StatusOr<bool> filled = Fill();
      if (!filled.ok()) return filled.status();
      if (!*filled) {
        if (!started) return false;
        break;
      }
    }
    started = true;
    const char* first = buffer_.data() + begin_;
    const size_t available = end_ - begin_;
    const void* newline = std::memchr(first, '\n', available);
    const size_t length = newline != nullptr
                              ? static_cast<size_t>(static_cast<const char*>(newline) - first)
                              : available;
    line.bytes += static_cast<int64_t>(length);
    if (max_line_bytes_ > 0 && line.bytes > max_line_bytes_) {
      line.over_limit = true;
      line.text.clear();
      line.text.shrink_to_fit();
    } else {
      line.text.append(first, length);
    }
    begin_ += length;
    if (newline != nullptr) {
      ++begin_;
      break;
    }
  }
  line.number = ++lines_read_;
  return true;
}

absl::StatusOr<int64_t> LineReader::Skip(int64_t count) {
  int64_t skipped = 0;
  while (skipped < count) {
    bool in_line = false;
    while (true) {
      if (begin_ == end_) {
        absl::StatusOr<bool> filled = Fill();
        if (!filled.ok()) return filled.status();
        if (!*filled) break;
      }
      in_line = true;
      const void* newline = std::memchr(buffer_.data() + begin_, '\n', end_ - begin_);
      if (newline == nullptr) {
        begin_ = end_;
        continue;
      }
      begin_ = static_cast<size_t>(static_cast<const char*>(newline) - buffer_.data()) + 1;
      break;
    }
    if (!in_line) break;
    ++skipped;
    ++lines_read_;
  }
  return skipped;
}

absl::StatusOr<int64_t> CountLines(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", std::strerror(errno)));
  }
  LineReader reader(file, 0, size_t{1} << 20);
  return reader.Skip(INT64_MAX);
}

}  // namespace kvmt
