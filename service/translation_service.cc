#include "service/translation_service.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/log.h"
#include "service/request_decoding.h"
#include "translator/scheduler.h"

namespace kvmt {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// `message` as the bytes of a gRPC message.
template <typename Message>
absl::Status Encode(const Message& message, grpc::ByteBuffer& buffer) {
  buffer.Clear();  // The serializer writes into an empty buffer only.
  bool own_buffer = false;
  const grpc::Status status =
      grpc::SerializationTraits<Message>::Serialize(message, &buffer, &own_buffer);
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cannot serialize the response: ", status.error_message()));
}

// Target tokens of a result's best hypothesis, for the call summary.
int64_t BestTokens(const v1::SegmentResult& result) {
  return result.hypotheses().empty() ? 0 : result.hypotheses(0).tokens_size();
}

}  // namespace

// The bookkeeping of one call: its summary line in the log and its metrics, once, at the end.
class TranslationService::CallLog {
 public:
  CallLog(Metrics& metrics, const char* method, const grpc::CallbackServerContext& context)
      : metrics_(metrics), method_(method), peer_(context.peer()) {}

  void set_model(const std::string& model) { model_ = model; }
  void set_segments(int segments) { segments_ = segments; }
  void AddTargetTokens(int64_t tokens) { target_tokens_ += tokens; }
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  void Finish(const absl::Status& status) {
    const double seconds = Seconds();
    metrics_.CountCall(method_, status.code(), seconds);
    std::string line =
        absl::StrFormat("%s peer=%s model=%s segments=%d target_tokens=%d %.1f ms %s", method_,
                        peer_, model_.empty() ? "-" : model_, segments_, target_tokens_,
                        seconds * 1000, absl::StatusCodeToString(status.code()));
    if (!status.ok()) absl::StrAppend(&line, ": ", status.message());
    LogInfo(line);
  }

 private:
  Metrics& metrics_;
  const char* const method_;
  const std::string peer_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string model_;
  int segments_ = 0;
  int64_t target_tokens_ = 0;
};

// Translate: results go straight into the response; the call finishes from OnDone.
class TranslationService::UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(TranslationService& service, grpc::CallbackServerContext* context,
            const grpc::ByteBuffer* request, grpc::ByteBuffer* response)
      : service_(service),
        log_(service.metrics_, "Translate", *context),
        observer_(*this),
        wire_response_(response) {
    service_.CallStarted();
    absl::StatusOr<v1::TranslateRequest> decoded = DecodeTranslateRequest(*request);
    absl::Status started = decoded.status();
    if (started.ok()) {
      log_.set_segments(decoded->segments_size());
      started = Start(service, *context, *decoded);
    }
    if (!started.ok()) Complete(started);
  }

  void OnCancel() override {
    if (const uint64_t id = id_.load(); id != 0) scheduler_->Cancel(id);
  }
  void OnDone() override {
    TranslationService& service = service_;
    delete this;
    service.CallEnded();
  }

 private:
  class Observer final : public TranslationObserver {
   public:
    explicit Observer(UnaryCall& call) : call_(call) {}
    void OnSegment(int segment, v1::SegmentResult result) override {
      call_.log_.AddTargetTokens(BestTokens(result));
      *call_.response_.mutable_results(segment) = std::move(result);
    }
    void OnDone(absl::Status status) override { call_.Complete(status); }

   private:
    UnaryCall& call_;
  };

  absl::Status Start(TranslationService& service, const grpc::CallbackServerContext& context,
                     const v1::TranslateRequest& request) {
    absl::StatusOr<ServedModel*> model = service.Admit(context, request);
    if (!model.ok()) return model.status();
    log_.set_model((*model)->name);
    scheduler_ = (*model)->scheduler.get();
    for (int i = 0; i < request.segments_size(); ++i) response_.add_results();
    // From here the call ends in Observer::OnDone, possibly before Submit returns; gRPC keeps
    // this reactor alive until the handler has returned it, whatever happens meanwhile.
    absl::StatusOr<uint64_t> id =
        scheduler_->Submit(request, service.Deadline(context), &observer_);
    if (!id.ok()) return id.status();
    id_ = *id;
    return absl::OkStatus();
  }

  // The last thing done with this object: after Finish, gRPC may delete it at any time.
  void Complete(absl::Status status) {
    if (status.ok()) status = Encode(response_, *wire_response_);
    log_.Finish(status);
    Finish(ToGrpc(status));
  }

  TranslationService& service_;
  CallLog log_;
  Observer observer_;
  v1::TranslateResponse response_;
  grpc::ByteBuffer* const wire_response_;
  Scheduler* scheduler_ = nullptr;
  std::atomic<uint64_t> id_{0};
};

// TranslateStream: scheduler events accumulate in `pending_` while a write is in flight and go
// out together in the next message, so a slow reader slows nobody else. Every entry point
// changes the state and decides what to do next in one critical section, then does it as its
// last act: once Finish is called, gRPC may delete the reactor from another thread.
class TranslationService::StreamCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  StreamCall(TranslationService& service, grpc::CallbackServerContext* context,
             const grpc::ByteBuffer* request)
      : service_(service),
        metrics_(service.metrics_),
        log_(service.metrics_, "TranslateStream", *context),
        observer_(*this) {
    service_.CallStarted();
    absl::StatusOr<v1::TranslateRequest> decoded = DecodeTranslateRequest(*request);
    absl::Status started = decoded.status();
    if (started.ok()) {
      log_.set_segments(decoded->segments_size());
      started = Start(service, *context, *decoded);
    }
    if (!started.ok()) {
      Advance([&] {
        done_ = true;
        status_ = started;
      });
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) Cancel();
    Advance([&] {
      writing_ = false;
      if (!ok) broken_ = true;
    });
  }
  void OnCancel() override { Cancel(); }
  void OnDone() override {
    TranslationService& service = service_;
    delete this;
    service.CallEnded();
  }

 private:
  class Observer final : public TranslationObserver {
   public:
    explicit Observer(StreamCall& call) : call_(call) {}
    void OnToken(int segment, int32_t id, const std::string& token) override {
      call_.Advance([&] {
        if (!call_.first_token_seen_) {
          call_.first_token_seen_ = true;
          call_.metrics_.ObserveFirstToken(call_.log_.Seconds());
        }
        v1::TokenEvent* event = call_.pending_.add_tokens();
        event->set_segment_index(static_cast<uint32_t>(segment));
        event->set_token(token);
        event->set_token_id(id);
      });
    }
    void OnSegment(int segment, v1::SegmentResult result) override {
      call_.Advance([&] {
        call_.log_.AddTargetTokens(BestTokens(result));
        v1::SegmentResultEvent* event = call_.pending_.add_results();
        event->set_segment_index(static_cast<uint32_t>(segment));
        *event->mutable_result() = std::move(result);
      });
    }
    void OnDone(absl::Status status) override {
      call_.Advance([&] {
        call_.done_ = true;
        call_.status_.Update(status);
      });
    }

   private:
    StreamCall& call_;
  };

  absl::Status Start(TranslationService& service, const grpc::CallbackServerContext& context,
                     const v1::TranslateRequest& request) {
    absl::StatusOr<ServedModel*> model = service.Admit(context, request);
    if (!model.ok()) return model.status();
    log_.set_model((*model)->name);
    scheduler_ = (*model)->scheduler.get();
    absl::StatusOr<uint64_t> id =
        scheduler_->Submit(request, service.Deadline(context), &observer_);
    if (!id.ok()) return id.status();
    id_ = *id;
    return absl::OkStatus();
  }

  void Cancel() {
    if (const uint64_t id = id_.load(); id != 0) scheduler_->Cancel(id);
  }

  template <typename Update>
  void Advance(Update update) {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      update();
      if (writing_ || finished_) return;
      if (!broken_ && (pending_.tokens_size() > 0 || pending_.results_size() > 0)) {
        const absl::Status encoded = Encode(pending_, in_flight_);
        pending_.Clear();
        if (encoded.ok()) {
          writing_ = true;
          action = kWrite;
        } else {
          broken_ = true;
          status_.Update(encoded);
        }
      }
      if (action == kNothing && done_) {
        finished_ = true;
        status = status_;
        action = kFinish;
      }
    }
    if (action == kWrite) {
      StartWrite(&in_flight_);
    } else if (action == kFinish) {
      log_.Finish(status);
      Finish(ToGrpc(status));
    }
  }

  TranslationService& service_;
  Metrics& metrics_;
  CallLog log_;
  Observer observer_;
  Scheduler* scheduler_ = nullptr;
  std::atomic<uint64_t> id_{0};

  std::mutex mutex_;
  v1::TranslateStreamResponse pending_;  // Events not written yet.
  grpc::ByteBuffer in_flight_;           // Owned by gRPC between StartWrite and OnWriteDone.
  bool writing_ = false;
  bool broken_ = false;  // A write failed: the client is gone.
  bool done_ = false;    // The scheduler is done with the request (or it never started).
  bool finished_ = false;
  bool first_token_seen_ = false;
  absl::Status status_;
};

TranslationService::TranslationService(const ModelRegistry& models, Metrics& metrics,
                                       ServiceOptions options)
    : models_(models), metrics_(metrics), options_(std::move(options)) {}

absl::Status TranslationService::Authenticate(const grpc::CallbackServerContext& context) const {
  if (!options_.token.has_value()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  std::optional<absl::string_view> authorization;
  if (it != metadata.end()) authorization = absl::string_view(it->second.data(), it->second.size());
  return options_.token->Check(authorization);
}

void TranslationService::CallStarted() {
  std::lock_guard<std::mutex> lock(calls_mutex_);
  ++calls_;
}

void TranslationService::CallEnded() {
  std::lock_guard<std::mutex> lock(calls_mutex_);
  if (--calls_ == 0) calls_ended_.notify_all();
}

bool TranslationService::WaitForCalls(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(calls_mutex_);
  return calls_ended_.wait_until(lock, absl::ToChronoTime(deadline), [&] { return calls_ == 0; });
}

absl::StatusOr<ServedModel*> TranslationService::Admit(const grpc::CallbackServerContext& context,
                                                       const v1::TranslateRequest& request) const {
  if (!accepting_) return absl::UnavailableError("the server is shutting down");
  if (absl::Status status = Authenticate(context); !status.ok()) return status;
  return models_.Find(request.model());
}

absl::Time TranslationService::Deadline(const grpc::CallbackServerContext& context) const {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) return absl::FromChrono(deadline);
  if (options_.default_deadline > absl::ZeroDuration()) {
    return absl::Now() + options_.default_deadline;
  }
  return absl::InfiniteFuture();
}

grpc::ServerUnaryReactor* TranslationService::Translate(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  return new UnaryCall(*this, context, request, response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TranslationService::TranslateStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return new StreamCall(*this, context, request);
}

grpc::ServerUnaryReactor* TranslationService::ListModels(grpc::CallbackServerContext* context,
                                                         const v1::ListModelsRequest* request,
                                                         v1::ListModelsResponse* response) {
  CallLog log(metrics_, "ListModels", *context);
  absl::Status status = Authenticate(*context);
  if (status.ok()) *response = models_.List();
  log.Finish(status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

}  // namespace kvmt
