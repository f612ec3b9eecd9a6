#include "tools/translate/ordered_writer.h"

#include <utility>

namespace kvmt {

OrderedWriter::OrderedWriter(OutputFile& output, int64_t next_line)
    : output_(output), next_line_(next_line) {}

void OrderedWriter::Put(int64_t number, std::string text) {
  done_.emplace(number, std::move(text));
}

absl::Status OrderedWriter::Flush() {
  std::string text;
  int64_t next = next_line_;
  auto it = done_.begin();
  for (; it != done_.end() && it->first == next; ++it, ++next) {
    text.append(it->second);
    text.push_back('\n');
  }
  if (text.empty()) return absl::OkStatus();
  if (absl::Status status = output_.Append(text); !status.ok()) return status;
  done_.erase(done_.begin(), it);
  next_line_ = next;
  return absl::OkStatus();
}

}  // namespace kvmt
