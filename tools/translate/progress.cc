#include "tools/translate/progress.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kvmt {
namespace {

constexpr double kRedrawSeconds = 0.2;
constexpr char kEraseLine[] = "\r\033[K";

std::string Duration(double seconds) {
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  const int64_t hours = total / 3600;
  const int64_t minutes = total / 60 % 60;
  const int64_t rest = total % 60;
  if (hours > 0) return absl::StrFormat("%d:%02d:%02d", hours, minutes, rest);
  return absl::StrFormat("%d:%02d", minutes, rest);
}

}  // namespace

std::string ProgressLine(const ProgressFigures& f) {
  const double seconds = f.seconds > 0 ? f.seconds : 0;
  const double segments_per_second = seconds > 0 ? static_cast<double>(f.segments) / seconds : 0;
  const double tokens_per_second = seconds > 0 ? static_cast<double>(f.target_tokens) / seconds : 0;
  std::string line;
  if (f.total_lines >= 0) {
    const double percent =
        f.total_lines > 0 ? 100.0 * static_cast<double>(f.lines_done) / f.total_lines : 100.0;
    line = absl::StrFormat("%d/%d lines (%.1f%%)", f.lines_done, f.total_lines, percent);
  } else {
    line = absl::StrFormat("%d lines", f.lines_done);
  }
  absl::StrAppend(&line, absl::StrFormat(", %.0f segments/s, %.0f target tokens/s",
                                         segments_per_second, tokens_per_second));
  if (f.total_lines >= 0) {
    const double lines_per_second =
        seconds > 0 ? static_cast<double>(f.lines_this_run) / seconds : 0;
    const int64_t left = f.total_lines - f.lines_done;
    if (left <= 0) {
      absl::StrAppend(&line, ", ETA 0:00");
    } else if (lines_per_second > 0) {
      absl::StrAppend(&line, ", ETA ", Duration(static_cast<double>(left) / lines_per_second));
    } else {
      absl::StrAppend(&line, ", ETA -");
    }
  }
  return line;
}

double Progress::SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::ostream& out, bool show_bar, Clock clock)
    : out_(out), show_bar_(show_bar), clock_(std::move(clock)) {}

void Progress::Update(const ProgressFigures& figures) {
  if (!show_bar_) return;
  const double now = clock_();
  if (last_draw_ >= 0 && now - last_draw_ < kRedrawSeconds) return;
  last_draw_ = now;
  line_ = ProgressLine(figures);
  Draw();
}

void Progress::Draw() {
  out_ << kEraseLine << line_;
  out_.flush();
}

void Progress::Message(absl::string_view text) {
  if (show_bar_ && !line_.empty()) out_ << kEraseLine;
  out_ << text << "\n";
  if (show_bar_ && !line_.empty()) {
    Draw();
  } else {
    out_.flush();
  }
}

void Progress::Finish() {
  if (!show_bar_ || line_.empty()) return;
  out_ << kEraseLine;
  out_.flush();
  line_.clear();
}

}  // namespace kvmt
