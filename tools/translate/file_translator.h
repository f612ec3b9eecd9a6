// FileTranslator: the batch pipeline of kvmt-translate. Reads the input in windows of lines,
// checks and parses each line, translates the window's segments in length-sorted batches and
// hands each output line to an OrderedWriter as soon as it is complete. A bad line (over the
// byte limit, not UTF-8, malformed, or rejected by the engine) either stops the run once every
// line before it is written (OnError::kFail), or becomes an empty output line (kSkip).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/translate/batch_planner.h"
#include "tools/translate/line_format.h"
#include "tools/translate/line_reader.h"
#include "tools/translate/ordered_writer.h"
#include "tools/translate/progress.h"
#include "tools/translate/translation_backend.h"

namespace kvmt {

enum class OnError { kFail, kSkip };

struct FileTranslatorOptions {
  std::string input_name = "<stdin>";  // How messages name the input.
  int window_lines = 4096;             // Lines read, sorted and batched together; >= 1.
  BatchLimits batch;
  int64_t max_line_bytes = 0;  // What the reader was given, for the message; 0: no limit.
  OnError on_error = OnError::kFail;
  int64_t total_lines = -1;  // Input lines, for the progress bar; -1: unknown.
};

struct FileTranslationStats {
  static constexpr size_t kListedBadLines = 20;
  int64_t lines = 0;  // Input lines done in this run.
  int64_t segments = 0;
  int64_t source_tokens = 0;
  int64_t target_tokens = 0;  // Of each segment's best hypothesis.
  int64_t bad_lines = 0;
  std::vector<int64_t> listed_bad_lines;  // The first kListedBadLines of them.
};

class FileTranslator {
 public:
  FileTranslator(const FileTranslatorOptions& options, const LineFormat& format,
                 TranslationBackend& backend, Progress& progress);

  // Translates the lines `reader` has not read yet into `writer`. OK when every line has its
  // output line (under kSkip, bad lines empty: see stats()). Otherwise the first bad line under
  // kFail, named by its number, after every line before it was written; or a failure to read,
  // write or translate that no line is to blame for.
  absl::Status Run(LineReader& reader, OrderedWriter& writer);

  const FileTranslationStats& stats() const { return stats_; }

 private:
  struct WindowLine;

  // The line's request (nullopt for an empty line: nothing to translate), or why it is bad.
  absl::StatusOr<std::optional<ParsedLine>> ParseLine(const InputLine& input) const;
  absl::Status TranslateWindow(std::vector<WindowLine>& window, OrderedWriter& writer);
  absl::Status TranslateBatch(std::vector<WindowLine>& window,
                              const std::vector<WindowSegment>& batch, OrderedWriter& writer);
  absl::Status Deliver(WindowLine& line, const WindowSegment& segment, v1::SegmentResult result,
                       OrderedWriter& writer);
  void MarkBad(WindowLine& line, const absl::Status& why, OrderedWriter& writer);
  void Complete(WindowLine& line, std::string text, OrderedWriter& writer);
  void ReportProgress();

  const FileTranslatorOptions options_;
  const LineFormat& format_;
  TranslationBackend& backend_;
  Progress& progress_;
  FileTranslationStats stats_;
  int64_t resumed_lines_ = 0;
  double start_seconds_ = 0;
  absl::Status first_failure_;  // kFail: the lowest bad line of the window so far.
  int64_t first_failure_line_ = 0;
};

}  // namespace kvmt
