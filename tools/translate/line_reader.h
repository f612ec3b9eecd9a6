// LineReader: the input as numbered lines read in fixed-size chunks, with a byte limit per line,
// so that memory stays bounded whatever the input holds (a huge line is measured, not stored).
// A last line without '\n' counts; nothing else is stripped ('\r' stays).
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvmt {

struct InputLine {
  int64_t number = 0;       // 1-based.
  std::string text;         // Without its '\n'; empty when the line is over the limit.
  int64_t bytes = 0;        // The whole line's length, also when it is over the limit.
  bool over_limit = false;  // Longer than max_line_bytes.
};

class LineReader {
 public:
  // max_line_bytes 0: no limit.
  LineReader(std::istream& in, int64_t max_line_bytes, size_t chunk_bytes = size_t{1} << 16);

  // Fills `line` with the next line: true, or false at the end of the input. DATA_LOSS when
  // the stream fails.
  absl::StatusOr<bool> Next(InputLine& line);

  // Reads past up to `count` lines without keeping them; returns how many there were.
  absl::StatusOr<int64_t> Skip(int64_t count);

  int64_t lines_read() const { return lines_read_; }

 private:
  // Refills the buffer; false at the end of the input.
  absl::StatusOr<bool> Fill();

  std::istream& in_;
  const int64_t max_line_bytes_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool at_end_ = false;
  int64_t lines_read_ = 0;
};

// The number of lines in the file at `path` (a last line without '\n' counts), for a progress
// total. NOT_FOUND when it cannot be opened.
absl::StatusOr<int64_t> CountLines(const std::string& path);

}  // namespace kvmt
