// TranslationService: the kvmt.v1.Translator handlers on gRPC's callback API, so that no thread
// waits for a translation: each call goes to its model's Scheduler and is finished from the
// scheduler's callbacks. Checks the bearer token, picks the model, applies the default
// deadline, cancels the scheduled work when the call is cancelled, and counts and logs every
// call. Translate and TranslateStream take their requests as bytes and decode them here (see
// request_decoding.h). Sees requests and results, never tensors.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "absl/time/time.h"
#include "kvmt/v1/translation.grpc.pb.h"
#include "service/bearer_token.h"
#include "service/metrics.h"
#include "service/model_registry.h"

namespace kvmt {

struct ServiceOptions {
  absl::Duration default_deadline = absl::ZeroDuration();  // For calls without one; 0: none.
  std::optional<BearerToken> token;                        // Unset: no authentication.
};

class TranslationService final
    : public v1::Translator::WithRawCallbackMethod_Translate<
          v1::Translator::WithRawCallbackMethod_TranslateStream<
              v1::Translator::WithCallbackMethod_ListModels<v1::Translator::Service>>> {
 public:
  TranslationService(const ModelRegistry& models, Metrics& metrics, ServiceOptions options);

  grpc::ServerUnaryReactor* Translate(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* TranslateStream(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

  // From now on new translations are UNAVAILABLE (a code clients and load balancers retry
  // elsewhere); those under way go on. Called when draining starts, before health says
  // NOT_SERVING, so that a client who saw NOT_SERVING is refused.
  void StopAccepting() { accepting_ = false; }
  // Waits until no translation call is under way, or until `deadline`; false if some still are.
  bool WaitForCalls(absl::Time deadline);

 private:
  class CallLog;
  class UnaryCall;
  class StreamCall;

  // What every call checks first: the token, then (for translations) the model.
  absl::Status Authenticate(const grpc::CallbackServerContext& context) const;
  absl::Time Deadline(const grpc::CallbackServerContext& context) const;

  // Checks common to both translation methods: accepting calls, the token, the model.
  absl::StatusOr<ServedModel*> Admit(const grpc::CallbackServerContext& context,
                                     const v1::TranslateRequest& request) const;

  void CallStarted();
  void CallEnded();

  const ModelRegistry& models_;
  Metrics& metrics_;
  const ServiceOptions options_;
  std::atomic<bool> accepting_{true};
  std::mutex calls_mutex_;
  std::condition_variable calls_ended_;
  int calls_ = 0;  // Translation calls whose reactor exists.
};

}  // namespace kvmt
