// Progress: what kvmt-translate says on stderr while it runs. With the bar on (a terminal, or
// --progress), one line redrawn at most every 0.2 s: lines done (of the total when known),
// segments/s, target tokens/s and ETA. Messages (bad lines) go above it, bar or not.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"

namespace kvmt {

struct ProgressFigures {
  int64_t lines_done = 0;      // Input lines done, those of a resumed run included.
  int64_t total_lines = -1;    // -1: unknown (standard input).
  int64_t lines_this_run = 0;  // What the rates and the ETA are computed from.
  int64_t segments = 0;        // Translated in this run.
  int64_t target_tokens = 0;   // Of the best hypotheses, in this run.
  double seconds = 0;          // Since this run started translating.
};

// "1234/10000 lines (12.3%), 850 segments/s, 9800 target tokens/s, ETA 0:10", or without the
// total, percentage and ETA when the total is unknown.
std::string ProgressLine(const ProgressFigures& figures);

class Progress {
 public:
  using Clock = std::function<double()>;  // Monotonic seconds.
  static double SteadySeconds();

  Progress(std::ostream& out, bool show_bar, Clock clock = SteadySeconds);

  // Redraws the bar if it is on and the last drawing is old enough.
  void Update(const ProgressFigures& figures);
  // Prints `text` on a line of its own above the bar.
  void Message(absl::string_view text);
  // Erases the bar, so that what follows starts on a clean line.
  void Finish();

  bool show_bar() const { return show_bar_; }
  double now() const { return clock_(); }

 private:
  void Draw();

  std::ostream& out_;
  const bool show_bar_;
  const Clock clock_;
  double last_draw_ = -1;
  std::string line_;  // What the bar shows now; empty before the first Update.
};

}  // namespace kvmt
