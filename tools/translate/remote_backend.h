// RemoteBackend: a kvmt-server as the file pipeline's TranslationBackend. Each batch is one
// unary Translate call (TLS and a bearer token when asked); transient refusals (UNAVAILABLE, a
// full queue) are retried with backoff for up to a minute. Source lengths are estimated from the
// text (words), since the model's tokenizer is on the server.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvmt/v1/translation.grpc.pb.h"
#include "tools/translate/translation_backend.h"

namespace kvmt {

struct RemoteOptions {
  std::string address;          // HOST:PORT.
  std::string tls_ca_file;      // PEM roots: TLS; empty: plaintext.
  std::string auth_token_file;  // Sent as "authorization: Bearer <token>"; empty: none.
  std::string model;            // TranslateRequest.model; empty: the server's default.
  absl::Duration timeout = absl::ZeroDuration();  // Deadline of each call; zero: none.
  absl::Duration retry_for = absl::Minutes(1);    // Retrying transient refusals.
};

class RemoteBackend : public TranslationBackend {
 public:
  static absl::StatusOr<std::unique_ptr<RemoteBackend>> Connect(const RemoteOptions& options);

  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) override;
  int SourceLength(const v1::Segment& segment) const override;

  // The model the requests go to, as the server describes it; NOT_FOUND when it serves no such
  // model, UNAVAILABLE when it cannot be reached.
  absl::StatusOr<v1::ModelInfo> Model();

 private:
  RemoteBackend(const RemoteOptions& options, std::shared_ptr<grpc::Channel> channel,
                std::string authorization);
  std::unique_ptr<grpc::ClientContext> Context() const;

  const RemoteOptions options_;
  const std::string authorization_;
  const std::unique_ptr<v1::Translator::Stub> stub_;
};

}  // namespace kvmt
