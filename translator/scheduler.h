// Scheduler: continuous batching for one model. One thread owns a running batch (a BatchSearch
// over one decoder state); segments from any caller join it at the next step boundary, after
// their encoder pass, and leave as soon as they are done, so a short request never waits for a
// long one. Admission reserves pool blocks; requests wait in a bounded queue. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvmt/v1/translation.pb.h"
#include "translator/translator.h"

namespace kvmt {

struct SchedulerOptions {
  int max_batch_size = 32;         // Segments decoding together.
  int max_queued_segments = 1024;  // Waiting for admission; more is RESOURCE_EXHAUSTED.
  RequestLimits limits;            // Checked by Submit.
  // The baseline continuous batching is measured against: a request's segments still decode
  // together, but a request starts only when the one before has left the batch.
  bool one_request_at_a_time = false;
  // Called on the scheduler's thread before every decoder step with the batch's size.
  std::function<void(int segments, int hypotheses)> on_step;
};

struct SchedulerStats {
  int64_t queued_segments = 0;   // Waiting for admission.
  int64_t running_segments = 0;  // In the running batch.
  int64_t live_requests = 0;     // Submitted and not yet done.
  int64_t steps = 0;             // Decoder steps so far.
};

// What the Scheduler reports about one request, from its thread and in order: tokens and
// segment results as they come, then OnDone exactly once. Callbacks must return quickly; once
// OnDone is called the scheduler never touches the observer again.
class TranslationObserver {
 public:
  virtual ~TranslationObserver() = default;
  // A token appended to request segment `segment`; final. Only single-hypothesis decoding
  // (beam size 1) reports tokens, and not </s>.
  virtual void OnToken(int segment, int32_t id, const std::string& token) {}
  // The final result of request segment `segment`, once per segment.
  virtual void OnSegment(int segment, v1::SegmentResult result) = 0;
  // OK once every segment has its result; otherwise why the request ended early.
  virtual void OnDone(absl::Status status) = 0;
};

class Scheduler {
 public:
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      std::shared_ptr<const Translator> translator, const SchedulerOptions& options);
  // Ends every request still pending with UNAVAILABLE, then stops the thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Checks and tokenises `request` on the calling thread, then queues its segments. Errors
  // (INVALID_ARGUMENT, RESOURCE_EXHAUSTED when the queue is full or a segment can never fit,
  // UNAVAILABLE when stopping) mean the observer is never called. Otherwise returns the
  // request's id, and `observer`, which must live until its OnDone, gets OnDone exactly once,
  // possibly before Submit returns. Past `deadline` the request ends with DEADLINE_EXCEEDED.
  absl::StatusOr<uint64_t> Submit(const v1::TranslateRequest& request, absl::Time deadline,
                                  TranslationObserver* observer);
  // Ends request `id` with CANCELLED at the next step boundary, its cache blocks freed at once.
  // Does nothing when the request is already over.
  void Cancel(uint64_t id);

  // Submit, then wait for the whole response.
  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request,
                                                  absl::Time deadline = absl::InfiniteFuture());

  SchedulerStats stats() const;
  const Translator& translator() const { return *translator_; }

 private:
  struct Request;
  struct Queued {
    std::shared_ptr<Request> request;
    int segment;  // Index into the request's prepared segments.
  };
  struct Running {
    std::shared_ptr<Request> request;
    int segment;
    int64_t blocks;  // Reserved in the pool until the segment leaves.
  };
  class Loop;

  Scheduler(std::shared_ptr<const Translator> translator, const SchedulerOptions& options);

  const std::shared_ptr<const Translator> translator_;
  const SchedulerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Request>> live_;
  std::vector<std::shared_ptr<Request>> submitted_;  // Not yet seen by the loop.
  std::vector<uint64_t> cancelled_;                  // Cancel() calls not yet seen by the loop.
  std::deque<Queued> queue_;
  int64_t running_segments_ = 0;
  int64_t steps_ = 0;

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace kvmt
