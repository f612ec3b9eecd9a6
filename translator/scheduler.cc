#include "translator/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ops.h"
#include "core/status_macros.h"
#include "decoder/search/batch_search.h"
#include "translator/engine.h"

namespace kvmt {

struct Scheduler::Request {
  uint64_t id = 0;
  PreparedRequest prepared;
  TranslationObserver* observer = nullptr;
  absl::Time deadline;
  bool end_requested = false;  // Guarded by the scheduler's mutex: cancelled or past deadline.
  absl::Status end_status;     // Why, when end_requested.
  // The loop thread's own.
  int unfinished = 0;  // Prepared segments without a result yet.
  bool done = false;   // OnDone was called.
};

// The state only the decoding thread touches: the running batch and what its segments belong to.
class Scheduler::Loop {
 public:
  explicit Loop(Scheduler& scheduler)
      : scheduler_(scheduler),
        translator_(*scheduler.translator_),
        engine_(translator_.engine()),
        step_model_(engine_.NewStepModel()),
        search_(std::make_unique<BatchSearch>(*step_model_, engine_.search_vocabulary())) {}

  void Run() {
    SetNumThreads(engine_.options().threads);
    while (true) {
      std::vector<std::shared_ptr<Request>> submitted;
      std::vector<std::shared_ptr<Request>> ending;
      std::vector<Queued> admitted;
      {
        std::unique_lock<std::mutex> lock(scheduler_.mutex_);
        WaitForWork(lock);
        if (scheduler_.stopping_) break;
        submitted.swap(scheduler_.submitted_);
        CollectEnding(ending);
        Admit(admitted);
      }
      for (const std::shared_ptr<Request>& request : submitted) Start(*request);
      for (const std::shared_ptr<Request>& request : ending) End(*request, request->end_status);
      Join(admitted);
      if (!search_->empty()) StepOnce();
    }
    Shutdown();
  }

 private:
  // Sleeps until a request arrives or ends, or the batch has work; with queued segments and an
  // empty batch, the pool is held by someone else (the Translator's own path), so it polls.
  void WaitForWork(std::unique_lock<std::mutex>& lock) {
    Scheduler& s = scheduler_;
    while (!s.stopping_ && s.submitted_.empty() && s.cancelled_.empty() && search_->empty()) {
      const absl::Time now = absl::Now();
      absl::Time wake = absl::InfiniteFuture();
      for (const auto& [id, request] : s.live_) {
        if (!request->end_requested) wake = std::min(wake, request->deadline);
      }
      if (wake <= now) return;
      if (!s.queue_.empty()) {
        if (engine_.pool().stats().reserved_blocks == 0) return;
        wake = std::min(wake, now + absl::Milliseconds(5));
      }
      if (wake == absl::InfiniteFuture()) {
        s.wake_.wait(lock);
      } else {
        s.wake_.wait_for(lock, absl::ToChronoNanoseconds(wake - now));
      }
    }
  }

  // Requests cancelled or past their deadline: their queued segments leave the queue now.
  void CollectEnding(std::vector<std::shared_ptr<Request>>& ending) {
    Scheduler& s = scheduler_;
    for (uint64_t id : s.cancelled_) {
      auto it = s.live_.find(id);
      if (it == s.live_.end() || it->second->end_requested) continue;
      it->second->end_requested = true;
      it->second->end_status = absl::CancelledError("the request was cancelled");
      ending.push_back(it->second);
    }
    s.cancelled_.clear();
    const absl::Time now = absl::Now();
    for (const auto& [id, request] : s.live_) {
      if (request->end_requested || now < request->deadline) continue;
      request->end_requested = true;
      request->end_status = absl::DeadlineExceededError("the request's deadline passed");
      ending.push_back(request);
    }
    if (!ending.empty()) {
      std::erase_if(s.queue_, [](const Queued& q) { return q.request->end_requested; });
    }
  }

  // Moves segments from the head of the queue into the batch while there is room in it and the
  // pool grants their reservation. First come, first served: a large segment at the head is not
  // overtaken, so it cannot starve. One request at a time: only the running request's segments
  // (which are at the head of the queue, in order) may join.
  void Admit(std::vector<Queued>& admitted) {
    Scheduler& s = scheduler_;
    while (!s.queue_.empty() &&
           static_cast<int>(running_.size() + admitted.size()) < s.options_.max_batch_size) {
      const Queued& head = s.queue_.front();
      if (s.options_.one_request_at_a_time) {
        const Request* current = !admitted.empty()   ? admitted.front().request.get()
                                 : !running_.empty() ? running_.begin()->second.request.get()
                                                     : nullptr;
        if (current != nullptr && current != head.request.get()) break;
      }
      const PreparedRequest& prepared = head.request->prepared;
      const int64_t blocks =
          engine_.BlocksNeeded(prepared.segments[head.segment], prepared.options);
      if (!engine_.pool().TryReserve(blocks)) break;
      admitted.push_back(head);
      s.queue_.pop_front();
    }
    s.running_segments_ = static_cast<int64_t>(running_.size() + admitted.size());
  }

  // A new request: the results of its empty segments, and OnDone when that is all it has.
  void Start(Request& request) {
    if (request.done) return;
    std::vector<bool> has_ids(request.prepared.num_segments, false);
    for (int position : request.prepared.positions) has_ids[position] = true;
    for (int i = 0; i < request.prepared.num_segments; ++i) {
      if (has_ids[i]) continue;
      v1::SegmentResult empty;
      empty.add_hypotheses();
      request.observer->OnSegment(i, std::move(empty));
    }
    if (request.unfinished == 0) Finish(request, absl::OkStatus());
  }

  // Encodes the admitted segments in one batch and adds them to the running batch.
  void Join(std::vector<Queued>& admitted) {
    if (admitted.empty()) return;
    std::vector<const std::vector<int32_t>*> sources;
    for (const Queued& q : admitted) {
      sources.push_back(&q.request->prepared.segments[q.segment].source);
    }
    absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded =
        engine_.Encode(sources);
    for (size_t i = 0; i < admitted.size(); ++i) {
      Request& request = *admitted[i].request;
      const SegmentIds& segment = request.prepared.segments[admitted[i].segment];
      const int64_t blocks = engine_.BlocksNeeded(segment, request.prepared.options);
      absl::Status added = encoded.status();
      if (added.ok() && !request.done) {
        added = search_->Add(next_search_id_, (*encoded)[i], segment.target_prefix,
                             request.prepared.options);
      }
      if (!added.ok() || request.done) {
        engine_.pool().Unreserve(blocks);
        End(request, added);
        continue;
      }
      running_.emplace(next_search_id_++,
                       Running{admitted[i].request, admitted[i].segment, blocks});
    }
  }

  void StepOnce() {
    if (scheduler_.options_.on_step) {
      scheduler_.options_.on_step(search_->num_segments(), search_->num_hypotheses());
    }
    if (absl::Status status = search_->Step(output_); !status.ok()) {
      Reset(absl::InternalError(absl::StrCat("decoder step failed: ", status.message())));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(scheduler_.mutex_);
      ++scheduler_.steps_;
    }
    for (const SearchStepOutput::Token& token : output_.tokens) {
      auto it = running_.find(token.segment);
      if (it == running_.end() || it->second.request->done) continue;
      const Running& running = it->second;
      running.request->observer->OnToken(running.request->prepared.positions[running.segment],
                                         token.id, translator_.TargetToken(token.id));
    }
    // Finished segments have left the batch; they leave running_ before any result is
    // delivered, so that ending a request on the way does not look for them in the batch.
    finished_.clear();
    for (const SearchStepOutput::Done& done : output_.finished) {
      auto it = running_.find(done.segment);
      if (it == running_.end()) continue;
      engine_.pool().Unreserve(it->second.blocks);
      finished_.emplace_back(std::move(it->second), &done.result);
      running_.erase(it);
    }
    for (const auto& [running, found] : finished_) {
      Request& request = *running.request;
      if (request.done) continue;
      engine_.CountSegment(request.prepared.segments[running.segment], *found);
      absl::StatusOr<v1::SegmentResult> result =
          translator_.MakeSegmentResult(*found, request.prepared.return_scores);
      if (!result.ok()) {
        End(request, result.status());
        continue;
      }
      request.observer->OnSegment(request.prepared.positions[running.segment], *std::move(result));
      if (--request.unfinished == 0) Finish(request, absl::OkStatus());
    }
    finished_.clear();
    UpdateRunningCount();
  }

  // Ends `request` early: its running segments leave the batch now (their blocks go back to the
  // pool), its queued ones leave the queue.
  void End(Request& request, const absl::Status& status) {
    if (request.done) return;
    std::vector<uint64_t> ids;
    for (const auto& [id, running] : running_) {
      if (running.request.get() == &request) ids.push_back(id);
    }
    for (uint64_t id : ids) {
      auto it = running_.find(id);
      const int64_t blocks = it->second.blocks;
      running_.erase(it);
      if (absl::Status cancelled = search_->Cancel(id); !cancelled.ok()) {
        engine_.pool().Unreserve(blocks);
        Finish(request, status);
        Reset(absl::InternalError(
            absl::StrCat("cannot drop a segment from the batch: ", cancelled.message())));
        return;
      }
      engine_.pool().Unreserve(blocks);
    }
    {
      std::lock_guard<std::mutex> lock(scheduler_.mutex_);
      std::erase_if(scheduler_.queue_,
                    [&](const Queued& q) { return q.request.get() == &request; });
    }
    UpdateRunningCount();
    Finish(request, status);
  }

  void Finish(Request& request, const absl::Status& status) {
    request.done = true;
    {
      std::lock_guard<std::mutex> lock(scheduler_.mutex_);
      scheduler_.live_.erase(request.id);
    }
    request.observer->OnDone(status);
  }

  // The decoder state can no longer be trusted: every running request fails with `status` and
  // the batch starts afresh.
  void Reset(const absl::Status& status) {
    std::vector<std::shared_ptr<Request>> failed;
    for (auto& [id, running] : running_) {
      engine_.pool().Unreserve(running.blocks);
      failed.push_back(running.request);
    }
    running_.clear();
    search_.reset();
    step_model_ = engine_.NewStepModel();
    search_ = std::make_unique<BatchSearch>(*step_model_, engine_.search_vocabulary());
    for (const std::shared_ptr<Request>& request : failed) End(*request, status);
    UpdateRunningCount();
  }

  void Shutdown() {
    const absl::Status status = absl::UnavailableError("the server is shutting down");
    Reset(status);
    std::vector<std::shared_ptr<Request>> pending;
    {
      std::lock_guard<std::mutex> lock(scheduler_.mutex_);
      for (const auto& [id, request] : scheduler_.live_) pending.push_back(request);
    }
    for (const std::shared_ptr<Request>& request : pending) End(*request, status);
  }

  void UpdateRunningCount() {
    std::lock_guard<std::mutex> lock(scheduler_.mutex_);
    scheduler_.running_segments_ = static_cast<int64_t>(running_.size());
  }

  Scheduler& scheduler_;
  const Translator& translator_;
  const Engine& engine_;
  std::unique_ptr<StepModel> step_model_;
  std::unique_ptr<BatchSearch> search_;
  absl::flat_hash_map<uint64_t, Running> running_;  // By BatchSearch segment id.
  uint64_t next_search_id_ = 0;
  SearchStepOutput output_;
  std::vector<std::pair<Running, const SearchResult*>> finished_;
};

Scheduler::Scheduler(std::shared_ptr<const Translator> translator, const SchedulerOptions& options)
    : translator_(std::move(translator)), options_(options) {}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    std::shared_ptr<const Translator> translator, const SchedulerOptions& options) {
  if (translator == nullptr) return absl::InvalidArgumentError("Scheduler::Create: no translator");
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max batch size must be >= 1, got ", options.max_batch_size));
  }
  if (options.max_queued_segments < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max queued segments must be >= 1, got ", options.max_queued_segments));
  }
  std::unique_ptr<Scheduler> scheduler(new Scheduler(std::move(translator), options));
  scheduler->loop_ = std::make_unique<Loop>(*scheduler);
  scheduler->thread_ = std::thread([s = scheduler.get()] { s->loop_->Run(); });
  return scheduler;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

absl::StatusOr<uint64_t> Scheduler::Submit(const v1::TranslateRequest& request, absl::Time deadline,
                                           TranslationObserver* observer) {
  KVMT_ASSIGN_OR_RETURN(PreparedRequest prepared, translator_->Prepare(request, options_.limits));
  for (size_t i = 0; i < prepared.segments.size(); ++i) {
    if (absl::Status fits = translator_->engine().CheckFits(prepared.segments[i], prepared.options);
        !fits.ok()) {
      return absl::Status(fits.code(),
                          absl::StrCat("segment ", prepared.positions[i], ": ", fits.message()));
    }
  }
  const int64_t segments = static_cast<int64_t>(prepared.segments.size());
  auto state = std::make_shared<Request>();
  state->prepared = std::move(prepared);
  state->observer = observer;
  state->deadline = deadline;
  state->unfinished = static_cast<int>(segments);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (segments > options_.max_queued_segments) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the request has ", segments,
                       " segments to translate, more than the queue "
                       "holds (",
                       options_.max_queued_segments, ")"));
    }
    const int64_t queued = static_cast<int64_t>(queue_.size());
    if (queued + segments > options_.max_queued_segments) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the queue is full: ", queued, " segments waiting, limit ", options_.max_queued_segments,
          "; this request has ", segments, " to translate"));
    }
    state->id = next_id_++;
    live_.emplace(state->id, state);
    submitted_.push_back(state);
    for (int i = 0; i < static_cast<int>(segments); ++i) queue_.push_back(Queued{state, i});
  }
  wake_.notify_all();
  return state->id;
}

void Scheduler::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!live_.contains(id)) return;
    cancelled_.push_back(id);
  }
  wake_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return SchedulerStats{static_cast<int64_t>(queue_.size()), running_segments_,
                        static_cast<int64_t>(live_.size()), steps_};
}

namespace {

// Collects a whole response and wakes the waiting caller.
class ResponseCollector : public TranslationObserver {
 public:
  explicit ResponseCollector(int segments) {
    for (int i = 0; i < segments; ++i) response_.add_results();
  }
  void OnSegment(int segment, v1::SegmentResult result) override {
    *response_.mutable_results(segment) = std::move(result);
  }
  void OnDone(absl::Status status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = std::move(status);
    done_ = true;
    cv_.notify_all();
  }
  absl::StatusOr<v1::TranslateResponse> Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    if (!status_.ok()) return status_;
    return std::move(response_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  absl::Status status_;
  v1::TranslateResponse response_;
};

}  // namespace

absl::StatusOr<v1::TranslateResponse> Scheduler::Translate(const v1::TranslateRequest& request,
                                                           absl::Time deadline) {
  ResponseCollector collector(request.segments_size());
  KVMT_RETURN_IF_ERROR(Submit(request, deadline, &collector).status());
  return collector.Wait();
}

}  // namespace kvmt
