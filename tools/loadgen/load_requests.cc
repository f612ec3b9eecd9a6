#include "tools/loadgen/load_requests.h"

#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace kvmt {

std::vector<v1::TranslateRequest> RequestsFromLines(const std::vector<std::string>& lines,
                                                    int segments_per_request) {
  std::vector<const std::string*> texts;
  for (const std::string& line : lines) {
    if (!absl::StripAsciiWhitespace(line).empty()) texts.push_back(&line);
  }
  std::vector<v1::TranslateRequest> requests;
  if (texts.empty() || segments_per_request < 1) return requests;
  const size_t k = static_cast<size_t>(segments_per_request);
  const size_t segments = std::lcm(texts.size(), k);
  for (size_t i = 0; i < segments; ++i) {
    if (i % k == 0) requests.emplace_back();
    requests.back().add_segments()->set_text(*texts[i % texts.size()]);
  }
  return requests;
}

absl::StatusOr<std::vector<v1::TranslateRequest>> RequestsFromJsonLines(
    const std::vector<std::string>& lines) {
  std::vector<v1::TranslateRequest> requests;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (absl::StripAsciiWhitespace(lines[i]).empty()) continue;
    v1::TranslateRequest request;
    const auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(lines[i].data(), lines[i].size()), &request);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input line ", i + 1,
          " is not a kvmt.v1.TranslateRequest in JSON: ", status.message().ToString()));
    }
    requests.push_back(std::move(request));
  }
  return requests;
}

}  // namespace kvmt
