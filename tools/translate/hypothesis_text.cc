#include "tools/translate/hypothesis_text.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace kvmt {

std::string HypothesisText(const v1::SegmentResult& result, const HypothesisTextOptions& options) {
  std::vector<std::string> hypotheses;
  for (const v1::Hypothesis& hypothesis : result.hypotheses()) {
    std::string text =
        options.tokenized ? absl::StrJoin(hypothesis.tokens(), " ") : hypothesis.text();
    if (options.return_scores) {
      text = absl::StrCat(absl::StrFormat("%.6g", hypothesis.score()), "\t", text);
    }
    hypotheses.push_back(std::move(text));
  }
  return absl::StrReplaceAll(absl::StrJoin(hypotheses, " ||| "),
                             {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
}

}  // namespace kvmt
