#include "tools/translate/remote_backend.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace kvmt {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Refusals that say nothing about the request: the server is restarting or draining, or its
// queue is full for now (the scheduler's message; RESOURCE_EXHAUSTED otherwise blames a segment
// that can never fit).
bool Transient(const absl::Status& status) {
  return absl::IsUnavailable(status) || (absl::IsResourceExhausted(status) &&
                                         absl::StartsWith(status.message(), "the queue is full"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RemoteBackend>> RemoteBackend::Connect(
    const RemoteOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("no server address");
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> roots = ReadFile(options.tls_ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
    credentials = grpc::SslCredentials(ssl);
  }
  std::string authorization;
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFile(options.auth_token_file);
    if (!token.ok()) return token.status();
    authorization = absl::StrCat("Bearer ", absl::StripAsciiWhitespace(*token));
  }
  return std::unique_ptr<RemoteBackend>(new RemoteBackend(
      options, grpc::CreateChannel(options.address, credentials), std::move(authorization)));
}

RemoteBackend::RemoteBackend(const RemoteOptions& options, std::shared_ptr<grpc::Channel> channel,
                             std::string authorization)
    : options_(options),
      authorization_(std::move(authorization)),
      stub_(v1::Translator::NewStub(std::move(channel))) {}

std::unique_ptr<grpc::ClientContext> RemoteBackend::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
  if (options_.timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }
  return context;
}

absl::StatusOr<v1::TranslateResponse> RemoteBackend::Translate(
    const v1::TranslateRequest& request) {
  v1::TranslateRequest sent = request;
  sent.set_model(options_.model);
  const absl::Time give_up = absl::Now() + options_.retry_for;
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    v1::TranslateResponse response;
    const std::unique_ptr<grpc::ClientContext> context = Context();
    const absl::Status status = FromGrpc(stub_->Translate(context.get(), sent, &response));
    if (status.ok()) return response;
    if (!Transient(status) || options_.retry_for <= absl::ZeroDuration()) return status;
    if (absl::Now() + backoff > give_up) {
      return absl::UnavailableError(
          absl::StrCat("the server at ", options_.address, " still refuses after ",
                       absl::FormatDuration(options_.retry_for), ": ", status.message()));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

int RemoteBackend::SourceLength(const v1::Segment& segment) const {
  if (!segment.tokens().empty()) return segment.tokens_size();
  const std::vector<absl::string_view> words =
      absl::StrSplit(segment.text(), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  return static_cast<int>(words.size());
}

absl::StatusOr<v1::ModelInfo> RemoteBackend::Model() {
  v1::ListModelsResponse response;
  const std::unique_ptr<grpc::ClientContext> context = Context();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const absl::Status status =
      FromGrpc(stub_->ListModels(context.get(), v1::ListModelsRequest(), &response));
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("cannot list the models of the server at ",
                                                    options_.address, ": ", status.message()));
  }
  std::vector<std::string> names;
  for (const v1::ModelInfo& model : response.models()) {
    if (options_.model.empty() ? model.is_default() : model.name() == options_.model) {
      return model;
    }
    names.push_back(model.name());
  }
  return absl::NotFoundError(absl::StrCat(
      "the server at ", options_.address, " serves ",
      options_.model.empty() ? "no default model" : absl::StrCat("no model '", options_.model, "'"),
      "; it serves: ", absl::StrJoin(names, ", ")));
}

}  // namespace kvmt
