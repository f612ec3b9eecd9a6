#include "service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "service/log.h"
#include "service/metrics.h"
#include "service/metrics_http_server.h"

namespace kvmt {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the ", what, " '", path, "'"));
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  KVMT_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(options.tls_cert_file, "TLS certificate"));
  KVMT_ASSIGN_OR_RETURN(pair.private_key, ReadFile(options.tls_key_file, "TLS key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server());
  server->metrics_ = std::make_unique<Metrics>();

  ServiceOptions service_options;
  service_options.default_deadline = options.default_deadline;
  if (!options.auth_token_file.empty()) {
    KVMT_ASSIGN_OR_RETURN(service_options.token, BearerToken::FromFile(options.auth_token_file));
    LogInfo(
        absl::StrCat("bearer token authentication on (token from ", options.auth_token_file, ")"));
  }
  KVMT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));

  KVMT_ASSIGN_OR_RETURN(
      server->models_,
      ModelRegistry::Load(options.models, options.engine, options.scheduling, *server->metrics_));
  server->service_ = std::make_unique<TranslationService>(*server->models_, *server->metrics_,
                                                          std::move(service_options));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  LogInfo(absl::StrCat("listening on ", host, ":", server->port_, " (",
                       options.tls_cert_file.empty() ? "plaintext" : "TLS", ")"));

  if (!options.metrics_listen.empty()) {
    const Metrics* metrics = server->metrics_.get();
    const ModelRegistry* models = server->models_.get();
    KVMT_ASSIGN_OR_RETURN(server->metrics_server_,
                          MetricsHttpServer::Start(options.metrics_listen, [metrics, models] {
                            return metrics->Render(*models);
                          }));
    const std::string metrics_host =
        options.metrics_listen.substr(0, options.metrics_listen.rfind(':'));
    LogInfo(absl::StrCat("metrics on http://", metrics_host, ":", server->metrics_server_->port(),
                         "/metrics"));
  }

  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(v1::Translator::service_full_name(), true);
  health->SetServingStatus(true);
  server->metrics_->SetServing(true);
  LogInfo("serving");
  return server;
}

int Server::metrics_port() const {
  return metrics_server_ == nullptr ? 0 : metrics_server_->port();
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    service_->StopAccepting();
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    metrics_->SetServing(false);
    LogInfo(absl::StrCat("draining: NOT_SERVING, new calls UNAVAILABLE, ",
                         absl::FormatDuration(grace), " for the calls in flight"));
    // gRPC keeps answering meanwhile (health checks see NOT_SERVING); its own shutdown comes
    // last and cancels what is left.
    if (!service_->WaitForCalls(absl::Now() + grace)) {
      LogInfo("grace period over: cancelling the calls still in flight");
    }
    grpc_server_->Shutdown(std::chrono::system_clock::now());
    grpc_server_->Wait();
  }
  metrics_server_.reset();
  service_.reset();
  models_.reset();
  LogInfo("stopped");
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

}  // namespace kvmt
