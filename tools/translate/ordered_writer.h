// OrderedWriter: output lines finish out of order (batches are sorted by length) and are written
// in input order, each as soon as every line before it is done: one OutputFile::Append per Flush.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "tools/translate/output_file.h"

namespace kvmt {

class OrderedWriter {
 public:
  // `next_line`: the number of the first line to write (1, or after the lines resumed).
  OrderedWriter(OutputFile& output, int64_t next_line);

  // The output of line `number` (without '\n'), which must not have been put before.
  void Put(int64_t number, std::string text);
  // Appends the lines from next_line() on that are done, each followed by '\n'.
  absl::Status Flush();

  int64_t next_line() const { return next_line_; }
  size_t waiting() const { return done_.size(); }  // Lines done but not yet writable.

 private:
  OutputFile& output_;
  int64_t next_line_;
  std::map<int64_t, std::string> done_;
};

}  // namespace kvmt
