// Fuzz target: bytes as a kvmt.v1.TranslateRequest on the wire, handed to kvmt-server's handlers
// (TranslationService over the schedulers of a tiny CTranslate2 model, the default, and a tiny
// Marian model called "marian") through an in-process channel: no socket, but the same decoding,
// validation, admission, scheduling and response path as a call from the network, with
// kvmt-server's default request limits. The first byte chooses Translate (even) or
// TranslateStream (odd). Every status is fine; a crash, a hang or a sanitizer report is not.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "service/metrics.h"
#include "service/model_registry.h"
#include "service/translation_service.h"
#include "tests/fuzz/fuzz_support.h"

namespace kvmt {
namespace {

class InProcessServer {
 public:
  InProcessServer() {
    TranslatorOptions engine;
    engine.threads = 1;
    engine.cache_memory_bytes = int64_t{16} << 20;
    SchedulerOptions scheduling;
    scheduling.max_batch_size = 8;
    // kvmt-server's defaults.
    scheduling.limits.max_segments = 256;
    scheduling.limits.max_segment_bytes = 16384;
    scheduling.limits.max_segment_tokens = 1024;
    scheduling.limits.max_beam_size = 16;
    absl::StatusOr<std::unique_ptr<ModelRegistry>> models =
        ModelRegistry::Load({{"tiny", fuzz::TinyCTranslate2Dir("service_ct2").string()},
                             {"marian", fuzz::TinyMarianDir("service_marian").string()}},
                            engine, scheduling, metrics_);
    if (!models.ok()) {
      std::fprintf(stderr, "the fixture models do not load: %s\n",
                   models.status().ToString().c_str());
      std::abort();
    }
    models_ = *std::move(models);
    service_ = std::make_unique<TranslationService>(*models_, metrics_, ServiceOptions{});
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ =
        std::make_unique<grpc::GenericStub>(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  ~InProcessServer() {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }

  void Unary(const grpc::ByteBuffer& request) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    grpc::CompletionQueue queue;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
        stub_->PrepareUnaryCall(&context, "/kvmt.v1.Translator/Translate", request, &queue);
    call->StartCall();
    call->Finish(&response, &status, this);
    Next(queue);
    Drain(queue);
  }

  void Stream(const grpc::ByteBuffer& request) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    grpc::CompletionQueue queue;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub_->PrepareCall(&context, "/kvmt.v1.Translator/TranslateStream", &queue);
    call->StartCall(this);
    bool ok = Next(queue);
    if (ok) {
      call->Write(request, this);
      ok = Next(queue);
    }
    if (ok) {
      call->WritesDone(this);
      ok = Next(queue);
    }
    grpc::ByteBuffer response;
    while (ok) {
      call->Read(&response, this);
      ok = Next(queue);
    }
    grpc::Status status;
    call->Finish(&status, this);
    Next(queue);
    Drain(queue);
  }

 private:
  // A call that takes longer is a hang (libFuzzer's -timeout reports it first).
  static std::chrono::system_clock::time_point Deadline() {
    return std::chrono::system_clock::now() + std::chrono::seconds(60);
  }

  // Waits for the call's next event: whether its operation succeeded.
  static bool Next(grpc::CompletionQueue& queue) {
    void* tag = nullptr;
    bool ok = false;
    return queue.Next(&tag, &ok) && ok;
  }

  static void Drain(grpc::CompletionQueue& queue) {
    queue.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue.Next(&tag, &ok)) {
    }
  }

  Metrics metrics_;
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<TranslationService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

}  // namespace
}  // namespace kvmt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static kvmt::InProcessServer server;
  grpc::Slice slice(data + 1, size - 1);
  const grpc::ByteBuffer request(&slice, 1);
  if ((data[0] & 1) == 0) {
    server.Unary(request);
  } else {
    server.Stream(request);
  }
  return 0;
}
