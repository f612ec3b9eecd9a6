// Server: a running kvmt-server — the models, the gRPC server (kvmt.v1.Translator, the standard
// health service and server reflection, optionally over TLS) and the metrics endpoint — started
// stage by stage with a log line each, and drained on Shutdown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/model_registry.h"
#include "service/translation_service.h"
#include "translator/scheduler.h"
#include "translator/translator.h"

namespace grpc {
class Server;
}

namespace kvmt {

class MetricsHttpServer;

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free one.
  std::vector<ModelSpec> models;
  TranslatorOptions engine;
  SchedulerOptions scheduling;
  absl::Duration default_deadline = absl::ZeroDuration();
  int max_message_bytes = 4 << 20;  // Largest request gRPC accepts.
  std::string tls_cert_file;        // With tls_key_file: TLS; both empty: plaintext.
  std::string tls_key_file;
  std::string auth_token_file;  // Empty: no authentication.
  std::string metrics_listen;   // HOST:PORT of the metrics endpoint; empty: none.
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();  // Shutdown(zero grace) if it has not been called.

  int port() const { return port_; }
  int metrics_port() const;

  // Health goes NOT_SERVING and new translation calls are UNAVAILABLE; calls in flight get
  // `grace` to finish, then are cancelled. Returns when every call is over and the models are
  // unloaded.
  void Shutdown(absl::Duration grace);

 private:
  Server() = default;

  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<TranslationService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace kvmt
