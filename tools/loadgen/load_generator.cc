#include "tools/loadgen/load_generator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "kvmt/v1/translation.grpc.pb.h"

namespace kvmt {
namespace {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const LoadOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty()) {
    std::ifstream in(options.tls_ca_file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read --tls-ca ", options.tls_ca_file));
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  if (!options.load_balancing.empty()) {
    arguments.SetLoadBalancingPolicyName(options.load_balancing);
  }
  if (!options.tls_server_name.empty()) {
    arguments.SetSslTargetNameOverride(options.tls_server_name);
  }
  return grpc::CreateCustomChannel(options.server, credentials, arguments);
}

absl::Status CheckOptions(const LoadOptions& options,
                          const std::vector<v1::TranslateRequest>& requests) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is required");
  if (requests.empty()) return absl::InvalidArgumentError("the input holds no request");
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--concurrency must be >= 1, got ", options.concurrency));
  }
  if (options.duration <= absl::ZeroDuration() && options.max_requests <= 0) {
    return absl::InvalidArgumentError("give a positive --duration or --requests");
  }
  if (options.max_requests < 0 || options.deadline < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--requests and --deadline-ms must be >= 0");
  }
  if (options.deadline_max > absl::ZeroDuration() && options.deadline_max < options.deadline) {
    return absl::InvalidArgumentError("--deadline-ms-max must be >= --deadline-ms");
  }
  if (!(options.cancel_fraction >= 0 && options.cancel_fraction <= 1) ||
      options.cancel_within < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--cancel-fraction must be in [0, 1] and --cancel-within-ms >= 0");
  }
  return absl::OkStatus();
}

// How one call ended.
struct Outcome {
  grpc::Status status;
  int expected_segments = 0;
  int64_t segments = 0;       // Results received.
  int64_t target_tokens = 0;  // Best hypothesis of each result.
  absl::Duration latency;
  std::optional<absl::Duration> first_response;
  std::string wrong_translation;  // The first result that is not the expected one.
};

// Counts the result of `segment` and checks it against LoadOptions::expected.
void CountResult(const LoadOptions& options, const v1::Segment& segment,
                 const v1::SegmentResult& result, Outcome& outcome) {
  ++outcome.segments;
  if (result.hypotheses_size() > 0) outcome.target_tokens += result.hypotheses(0).tokens_size();
  if (options.expected.empty() || !outcome.wrong_translation.empty()) return;
  const auto expected = options.expected.find(segment.text());
  if (expected == options.expected.end()) return;
  const std::string got = result.hypotheses_size() > 0 ? result.hypotheses(0).text() : "";
  if (got != expected->second) {
    outcome.wrong_translation =
        absl::StrCat("'", segment.text(), "' gave '", got, "', expected '", expected->second, "'");
  }
}

// Client-side cancellations: calls' contexts with the time to cancel them, cancelled on a
// thread of their own. A context is shared with its call, so it outlives whichever ends first
// (TryCancel on a call that already ended does nothing).
class Canceller {
 public:
  Canceller() : thread_([this] { Loop(); }) {}
  ~Canceller() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void CancelAt(absl::Time when, std::shared_ptr<grpc::ClientContext> context) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      due_.emplace(when, std::move(context));
    }
    wake_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto first = due_.begin();
      if (first->first > absl::Now()) {
        wake_.wait_until(lock, absl::ToChronoTime(first->first));
        continue;
      }
      std::shared_ptr<grpc::ClientContext> context = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      context->TryCancel();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<absl::Time, std::shared_ptr<grpc::ClientContext>> due_;
  bool stop_ = false;
  std::thread thread_;
};

class LoadRun {
 public:
  LoadRun(const LoadOptions& options, const std::vector<v1::TranslateRequest>& requests,
          v1::Translator::Stub& stub)
      : options_(options), requests_(requests), stub_(stub) {}

  LoadReport Run() {
    report_.server = options_.server;
    report_.concurrency = options_.concurrency;
    report_.stream = options_.stream;
    start_ = absl::Now();
    end_of_starts_ = options_.duration > absl::ZeroDuration() ? start_ + options_.duration
                                                              : absl::InfiniteFuture();
    std::vector<int64_t> first_calls;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(first_calls.size()) < options_.concurrency && MayStartLocked()) {
        first_calls.push_back(started_++);
        ++in_flight_;
      }
    }
    for (int64_t index : first_calls) Start(index);
    std::unique_lock<std::mutex> lock(mutex_);
    all_done_.wait(lock, [this] { return in_flight_ == 0; });
    report_.seconds = absl::ToDoubleSeconds(last_end_ - start_);
    return std::move(report_);
  }

  // Records a finished call and starts the next one in its place, if any is left.
  void Finish(const Outcome& outcome) {
    const absl::Time now = absl::Now();
    std::optional<int64_t> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Record(outcome);
      last_end_ = now;
      --in_flight_;
      if (MayStartLocked()) {
        next = started_++;
        ++in_flight_;
      } else if (in_flight_ == 0) {
        all_done_.notify_all();
      }
    }
    if (next) Start(*next);
  }

 private:
  class StreamCall;

  bool MayStartLocked() const {
    return absl::Now() < end_of_starts_ &&
           (options_.max_requests == 0 || started_ < options_.max_requests);
  }

  void Record(const Outcome& outcome) {
    ++report_.requests;
    std::string code;
    std::string message;
    if (!outcome.status.ok()) {
      code = absl::StatusCodeToString(static_cast<absl::StatusCode>(outcome.status.error_code()));
      message = outcome.status.error_message();
    } else if (outcome.segments != outcome.expected_segments) {
      code = "INCOMPLETE_RESPONSE";
      message =
          absl::StrCat(outcome.segments, " results for ", outcome.expected_segments, " segments");
    }
    if (!outcome.wrong_translation.empty()) {
      code = "WRONG_TRANSLATION";
      message = outcome.wrong_translation;
    }
    if (!code.empty()) {
      if (report_.errors[code]++ == 0) report_.first_error_message[code] = message;
      return;
    }
    ++report_.ok_requests;
    report_.segments += outcome.segments;
    report_.target_tokens += outcome.target_tokens;
    report_.latency_ms.push_back(absl::ToDoubleMilliseconds(outcome.latency));
    if (outcome.first_response) {
      report_.first_response_ms.push_back(absl::ToDoubleMilliseconds(*outcome.first_response));
    }
  }

  // Sets up call `index`: its metadata, deadline and cancellation (drawn from the seed and the
  // index, so that a run can be repeated), and its request.
  void Prepare(int64_t index, const std::shared_ptr<grpc::ClientContext>& context,
               v1::TranslateRequest& request) {
    if (!options_.auth_token.empty()) {
      context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.auth_token));
    }
    std::seed_seq seeds{options_.seed, static_cast<uint64_t>(index)};
    std::mt19937_64 draws(seeds);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    absl::Duration deadline = options_.deadline;
    if (options_.deadline_max > options_.deadline) {
      deadline += uniform(draws) * (options_.deadline_max - options_.deadline);
    }
    if (deadline > absl::ZeroDuration()) {
      context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    }
    if (uniform(draws) < options_.cancel_fraction) {
      canceller_->CancelAt(absl::Now() + uniform(draws) * options_.cancel_within, context);
    }
    request = requests_[static_cast<size_t>(index) % requests_.size()];
    if (request.model().empty()) request.set_model(options_.model);
    v1::DecodingOptions decoding = options_.decoding;
    decoding.MergeFrom(request.options());
    *request.mutable_options() = std::move(decoding);
  }

  void Start(int64_t index);

  const LoadOptions& options_;
  const std::vector<v1::TranslateRequest>& requests_;
  v1::Translator::Stub& stub_;
  // Only when calls are to be cancelled; outlives every call (destroyed after Run returns).
  std::unique_ptr<Canceller> canceller_ = options_.cancel_fraction > 0
                                              ? std::make_unique<Canceller>()
                                              : nullptr;
  absl::Time start_;
  absl::Time end_of_starts_;

  std::mutex mutex_;
  std::condition_variable all_done_;
  int64_t started_ = 0;
  int in_flight_ = 0;
  absl::Time last_end_;
  LoadReport report_;
};

// A TranslateStream call: reads every message, counting results as they come.
class LoadRun::StreamCall : public grpc::ClientReadReactor<v1::TranslateStreamResponse> {
 public:
  StreamCall(LoadRun& run, int64_t index) : run_(run) {
    run_.Prepare(index, context_, request_);
    outcome_.expected_segments = request_.segments_size();
  }

  void Begin() {
    start_ = absl::Now();
    run_.stub_.async()->TranslateStream(context_.get(), &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream is over; OnDone follows.
    if (!outcome_.first_response) outcome_.first_response = absl::Now() - start_;
    for (const v1::SegmentResultEvent& event : response_.results()) {
      if (event.segment_index() >= static_cast<uint32_t>(request_.segments_size())) continue;
      CountResult(run_.options_, request_.segments(static_cast<int>(event.segment_index())),
                  event.result(), outcome_);
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    outcome_.status = status;
    outcome_.latency = absl::Now() - start_;
    LoadRun& run = run_;
    const Outcome outcome = std::move(outcome_);
    // Before Finish: the last Finish lets RunLoad return and destroy the stub.
    delete this;
    run.Finish(outcome);
  }

 private:
  LoadRun& run_;
  const std::shared_ptr<grpc::ClientContext> context_ = std::make_shared<grpc::ClientContext>();
  v1::TranslateRequest request_;
  v1::TranslateStreamResponse response_;
  absl::Time start_;
  Outcome outcome_;
};

void LoadRun::Start(int64_t index) {
  if (options_.stream) {
    (new StreamCall(*this, index))->Begin();
    return;
  }
  struct UnaryCall {
    std::shared_ptr<grpc::ClientContext> context = std::make_shared<grpc::ClientContext>();
    v1::TranslateRequest request;
    v1::TranslateResponse response;
    absl::Time start;
  };
  auto* call = new UnaryCall;
  Prepare(index, call->context, call->request);
  call->start = absl::Now();
  stub_.async()->Translate(
      call->context.get(), &call->request, &call->response, [this, call](grpc::Status status) {
        Outcome outcome;
        outcome.status = std::move(status);
        outcome.latency = absl::Now() - call->start;
        outcome.expected_segments = call->request.segments_size();
        const int results = std::min(call->response.results_size(), call->request.segments_size());
        for (int i = 0; i < results; ++i) {
          CountResult(options_, call->request.segments(i), call->response.results(i), outcome);
        }
        outcome.segments = call->response.results_size();
        delete call;
        Finish(outcome);
      });
}

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::vector<v1::TranslateRequest>& requests) {
  if (absl::Status status = CheckOptions(options, requests); !status.ok()) return status;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  if (!(*channel)->WaitForConnected(absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.server, " within ",
                                               absl::FormatDuration(options.connect_timeout)));
  }
  std::unique_ptr<v1::Translator::Stub> stub = v1::Translator::NewStub(*channel);
  LoadRun run(options, requests, *stub);
  return run.Run();
}

}  // namespace kvmt
