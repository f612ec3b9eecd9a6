#include "tools/translate/file_translator.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "translator/utf8.h"

namespace kvmt {

struct FileTranslator::WindowLine {
  int64_t number = 0;
  ParsedLine parsed;
  v1::TranslateResponse response;  // Filled segment by segment.
  int pending = 0;                 // Segments not translated yet.
  bool bad = false;
  bool finished = false;  // Handed to the writer.
};

namespace {

// Errors that blame the request's segments, not the engine.
bool BlamesTheInput(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kOutOfRange ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

}  // namespace

FileTranslator::FileTranslator(const FileTranslatorOptions& options, const LineFormat& format,
                               TranslationBackend& backend, Progress& progress)
    : options_(options), format_(format), backend_(backend), progress_(progress) {}

absl::StatusOr<std::optional<ParsedLine>> FileTranslator::ParseLine(const InputLine& input) const {
  if (input.over_limit) {
    return absl::InvalidArgumentError(absl::StrCat("the line has ", input.bytes,
                                                   " bytes, more than --max-line-bytes ",
                                                   options_.max_line_bytes));
  }
  size_t offset = 0;
  if (!IsValidUtf8(std::string_view(input.text), &offset)) {
    return absl::InvalidArgumentError(absl::StrCat("not valid UTF-8 (byte ", offset, ")"));
  }
  if (input.text.empty()) return std::nullopt;
  absl::StatusOr<ParsedLine> parsed = format_.Parse(input.text);
  if (!parsed.ok()) return parsed.status();
  return *std::move(parsed);
}

absl::Status FileTranslator::Run(LineReader& reader, OrderedWriter& writer) {
  resumed_lines_ = reader.lines_read();
  start_seconds_ = progress_.now();
  const int window_lines = std::max(1, options_.window_lines);
  InputLine input;
  while (true) {
    std::vector<WindowLine> window;
    window.reserve(static_cast<size_t>(window_lines));
    std::optional<absl::Status> stop;  // kFail: a line found bad while reading.
    bool at_end = false;
    while (static_cast<int>(window.size()) < window_lines) {
      KVMT_ASSIGN_OR_RETURN(const bool more, reader.Next(input));
      if (!more) {
        at_end = true;
        break;
      }
      absl::StatusOr<std::optional<ParsedLine>> parsed = ParseLine(input);
      if (!parsed.ok() && options_.on_error == OnError::kFail) {
        stop = absl::Status(parsed.status().code(),
                            absl::StrCat(options_.input_name, " line ", input.number, ": ",
                                         parsed.status().message()));
        break;
      }
      WindowLine& line = window.emplace_back();
      line.number = input.number;
      if (!parsed.ok()) {
        MarkBad(line, parsed.status(), writer);
      } else if (!parsed->has_value()) {
        Complete(line, "", writer);
      } else {
        line.parsed = **std::move(parsed);
      }
    }
    KVMT_RETURN_IF_ERROR(TranslateWindow(window, writer));
    KVMT_RETURN_IF_ERROR(writer.Flush());
    ReportProgress();
    if (!first_failure_.ok()) return first_failure_;
    if (stop.has_value()) return *stop;
    if (at_end) return absl::OkStatus();
  }
}

absl::Status FileTranslator::TranslateWindow(std::vector<WindowLine>& window,
                                             OrderedWriter& writer) {
  absl::flat_hash_map<std::string, int> groups;  // Serialised options -> group.
  std::vector<WindowSegment> segments;
  for (size_t i = 0; i < window.size(); ++i) {
    WindowLine& line = window[i];
    if (line.bad || line.finished) continue;
    const v1::TranslateRequest& request = line.parsed.request;
    line.pending = request.segments_size();
    if (line.pending == 0) {
      KVMT_ASSIGN_OR_RETURN(std::string text, format_.Format(line.parsed, line.response));
      Complete(line, std::move(text), writer);
      continue;
    }
    for (int j = 0; j < line.pending; ++j) line.response.add_results();
    std::string key;
    request.options().SerializeToString(&key);
    const int group = groups.try_emplace(key, static_cast<int>(groups.size())).first->second;
    for (int j = 0; j < line.pending; ++j) {
      segments.push_back(
          WindowSegment{static_cast<int>(i), j, backend_.SourceLength(request.segments(j)), group});
    }
  }
  for (const std::vector<WindowSegment>& planned :
       PlanBatches(std::move(segments), options_.batch)) {
    std::vector<WindowSegment> batch;
    for (const WindowSegment& segment : planned) {
      const WindowLine& line = window[static_cast<size_t>(segment.line)];
      // Under kFail nothing after the first bad line is written: no need to translate it.
      if (line.bad || (!first_failure_.ok() && line.number > first_failure_line_)) continue;
      batch.push_back(segment);
    }
    if (batch.empty()) continue;
    KVMT_RETURN_IF_ERROR(TranslateBatch(window, batch, writer));
    KVMT_RETURN_IF_ERROR(writer.Flush());
    ReportProgress();
  }
  return absl::OkStatus();
}

absl::Status FileTranslator::TranslateBatch(std::vector<WindowLine>& window,
                                            const std::vector<WindowSegment>& batch,
                                            OrderedWriter& writer) {
  auto request_of = [&window](const std::vector<WindowSegment>& segments) {
    v1::TranslateRequest request;
    const v1::TranslateRequest& first =
        window[static_cast<size_t>(segments.front().line)].parsed.request;
    *request.mutable_options() = first.options();
    for (const WindowSegment& segment : segments) {
      *request.add_segments() =
          window[static_cast<size_t>(segment.line)].parsed.request.segments(segment.segment);
    }
    return request;
  };
  auto blame = [&window](const WindowSegment& segment, const absl::Status& status) {
    // Alone in its request, the engine calls the segment "segment 0"; the line knows better.
    absl::string_view message = status.message();
    absl::ConsumePrefix(&message, "segment 0: ");
    const WindowLine& line = window[static_cast<size_t>(segment.line)];
    if (line.parsed.request.segments_size() == 1) return absl::Status(status.code(), message);
    return absl::Status(status.code(), absl::StrCat("segment ", segment.segment, ": ", message));
  };

  absl::StatusOr<v1::TranslateResponse> response = backend_.Translate(request_of(batch));
  if (response.ok()) {
    if (response->results_size() != static_cast<int>(batch.size())) {
      return absl::InternalError(absl::StrCat("the engine returned ", response->results_size(),
                                              " results for ", batch.size(), " segments"));
    }
    for (size_t k = 0; k < batch.size(); ++k) {
      KVMT_RETURN_IF_ERROR(Deliver(window[static_cast<size_t>(batch[k].line)], batch[k],
                                   std::move(*response->mutable_results(static_cast<int>(k))),
                                   writer));
    }
    return absl::OkStatus();
  }
  if (!BlamesTheInput(response.status())) {
    return absl::Status(response.status().code(),
                        absl::StrCat("translation failed: ", response.status().message()));
  }
  if (batch.size() == 1) {
    MarkBad(window[static_cast<size_t>(batch.front().line)],
            blame(batch.front(), response.status()), writer);
    return absl::OkStatus();
  }
  // The batch failed as a whole: each segment alone tells which lines are to blame.
  for (const WindowSegment& segment : batch) {
    WindowLine& line = window[static_cast<size_t>(segment.line)];
    if (line.bad) continue;
    absl::StatusOr<v1::TranslateResponse> alone = backend_.Translate(request_of({segment}));
    if (alone.ok() && alone->results_size() == 1) {
      KVMT_RETURN_IF_ERROR(Deliver(line, segment, std::move(*alone->mutable_results(0)), writer));
    } else if (alone.ok()) {
      return absl::InternalError(
          absl::StrCat("the engine returned ", alone->results_size(), " results for 1 segment"));
    } else if (BlamesTheInput(alone.status())) {
      MarkBad(line, blame(segment, alone.status()), writer);
    } else {
      return absl::Status(alone.status().code(),
                          absl::StrCat("translation failed: ", alone.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status FileTranslator::Deliver(WindowLine& line, const WindowSegment& segment,
                                     v1::SegmentResult result, OrderedWriter& writer) {
  if (line.bad) return absl::OkStatus();
  ++stats_.segments;
  stats_.source_tokens += segment.length;
  if (!result.hypotheses().empty()) stats_.target_tokens += result.hypotheses(0).tokens_size();
  *line.response.mutable_results(segment.segment) = std::move(result);
  if (--line.pending > 0) return absl::OkStatus();
  KVMT_ASSIGN_OR_RETURN(std::string text, format_.Format(line.parsed, line.response));
  Complete(line, std::move(text), writer);
  return absl::OkStatus();
}

void FileTranslator::MarkBad(WindowLine& line, const absl::Status& why, OrderedWriter& writer) {
  if (line.bad) return;
  line.bad = true;
  const std::string message =
      absl::StrCat(options_.input_name, " line ", line.number, ": ", why.message());
  if (options_.on_error == OnError::kFail) {
    if (first_failure_.ok() || line.number < first_failure_line_) {
      first_failure_ = absl::Status(why.code(), message);
      first_failure_line_ = line.number;
    }
    return;
  }
  ++stats_.bad_lines;
  if (stats_.listed_bad_lines.size() < FileTranslationStats::kListedBadLines) {
    stats_.listed_bad_lines.push_back(line.number);
  }
  progress_.Message(absl::StrCat("kvmt-translate: ", message, " (written as an empty line)"));
  Complete(line, "", writer);
}

void FileTranslator::Complete(WindowLine& line, std::string text, OrderedWriter& writer) {
  line.finished = true;
  ++stats_.lines;
  line.parsed = ParsedLine{};
  line.response.Clear();
  writer.Put(line.number, std::move(text));
}

void FileTranslator::ReportProgress() {
  ProgressFigures figures;
  figures.lines_done = resumed_lines_ + stats_.lines;
  figures.total_lines = options_.total_lines;
  figures.lines_this_run = stats_.lines;
  figures.segments = stats_.segments;
  figures.target_tokens = stats_.target_tokens;
  figures.seconds = progress_.now() - start_seconds_;
  progress_.Update(figures);
}

}  // namespace kvmt
