// kvmt-client: translates a file (or stdin) line by line through a kvmt-server, like
// kvmt-translate does locally: one output line per input line, in order, formatted the same way.
// Lines go --batch-size at a time in one Translate (or, with --stream, TranslateStream) call.
// Also: --health (the server's grpc.health.v1 status; exit 0 when SERVING) and --list-models.
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "kvmt/v1/translation.grpc.pb.h"
#include "tools/kebab_flags.h"
#include "tools/segment_format.h"

ABSL_FLAG(std::string, server, "", "Server address, HOST:PORT. Required.");
ABSL_FLAG(std::string, input, "-", "Input file, one segment per line; - is stdin.");
ABSL_FLAG(bool, stream, false, "Use TranslateStream instead of Translate.");
ABSL_FLAG(bool, show_tokens, false, "With --stream: print each token event on stderr.");
ABSL_FLAG(std::string, model, "", "Model name; empty: the server's default model.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of the CA that signed the server's certificate; given: connect with TLS.");
ABSL_FLAG(std::string, auth_token_file, "", "File holding the bearer token to send.");
ABSL_FLAG(int32_t, batch_size, 32, "Lines per call.");
ABSL_FLAG(double, timeout_seconds, 0, "Deadline of each call; 0: none.");
ABSL_FLAG(int32_t, beam_size, 0, "Beam size; 0: the model's default, else 4. 1 is greedy.");
ABSL_FLAG(int32_t, num_hypotheses, 0, "Hypotheses per segment, on one line; 0: 1.");
ABSL_FLAG(std::optional<float>, length_penalty, std::nullopt, "Unset: 1; 0: none.");
ABSL_FLAG(int32_t, max_decoding_length, 0, "Most target tokens; 0: 256.");
ABSL_FLAG(int32_t, max_input_length, 0, "Longer sources are truncated; 0: 1024.");
ABSL_FLAG(bool, return_scores, false, "Write each hypothesis as '<score>\\t<text>'.");
ABSL_FLAG(bool, tokenized, false,
          "Input lines are space-separated tokens; output lines are tokens joined by spaces.");
ABSL_FLAG(bool, health, false,
          "Print the server's health status (grpc.health.v1) and exit: 0 when SERVING.");
ABSL_FLAG(bool, list_models, false, "Print the models the server serves and exit.");

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

class Client {
 public:
  static absl::StatusOr<Client> Connect() {
    const std::string server = absl::GetFlag(FLAGS_server);
    if (server.empty()) return absl::InvalidArgumentError("--server is required");
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (const std::string ca = absl::GetFlag(FLAGS_tls_ca); !ca.empty()) {
      grpc::SslCredentialsOptions ssl;
      KVMT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(ca));
      credentials = grpc::SslCredentials(ssl);
    }
    Client client;
    client.channel_ = grpc::CreateChannel(server, credentials);
    if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
      KVMT_ASSIGN_OR_RETURN(const std::string token, ReadFile(path));
      client.authorization_ = absl::StrCat("Bearer ", absl::StripAsciiWhitespace(token));
    }
    return client;
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
    if (const double seconds = absl::GetFlag(FLAGS_timeout_seconds); seconds > 0) {
      context->set_deadline(std::chrono::system_clock::now() +
                            std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
    }
    return context;
  }

  absl::StatusOr<v1::TranslateResponse> Translate(const v1::TranslateRequest& request) const {
    auto stub = v1::Translator::NewStub(channel_);
    if (!absl::GetFlag(FLAGS_stream)) {
      v1::TranslateResponse response;
      auto context = Context();
      KVMT_RETURN_IF_ERROR(FromGrpc(stub->Translate(context.get(), request, &response)));
      return response;
    }
    v1::TranslateResponse response;
    for (int i = 0; i < request.segments_size(); ++i) response.add_results();
    auto context = Context();
    std::unique_ptr<grpc::ClientReader<v1::TranslateStreamResponse>> reader =
        stub->TranslateStream(context.get(), request);
    v1::TranslateStreamResponse message;
    while (reader->Read(&message)) {
      for (const v1::TokenEvent& token : message.tokens()) {
        if (absl::GetFlag(FLAGS_show_tokens)) {
          std::cerr << "segment " << token.segment_index() << ": " << token.token() << "\n";
        }
      }
      for (const v1::SegmentResultEvent& result : message.results()) {
        if (static_cast<int>(result.segment_index()) >= request.segments_size()) {
          return absl::InternalError(
              absl::StrCat("the server sent a result for segment ", result.segment_index()));
        }
        *response.mutable_results(static_cast<int>(result.segment_index())) = result.result();
      }
    }
    KVMT_RETURN_IF_ERROR(FromGrpc(reader->Finish()));
    return response;
  }

  absl::Status PrintHealth() const {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::health::v1::HealthCheckResponse response;
    auto context = Context();
    KVMT_RETURN_IF_ERROR(
        FromGrpc(stub->Check(context.get(), grpc::health::v1::HealthCheckRequest(), &response)));
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
    if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::UnavailableError("the server is not serving");
    }
    return absl::OkStatus();
  }

  absl::Status PrintModels() const {
    auto stub = v1::Translator::NewStub(channel_);
    v1::ListModelsResponse response;
    auto context = Context();
    KVMT_RETURN_IF_ERROR(
        FromGrpc(stub->ListModels(context.get(), v1::ListModelsRequest(), &response)));
    for (const v1::ModelInfo& model : response.models()) {
      std::cout << model.name() << (model.is_default() ? " (default)" : "") << ": "
                << model.format() << ", " << model.encoder_layers() << " encoder + "
                << model.decoder_layers() << " decoder layers, d_model " << model.d_model()
                << ", vocabularies " << model.source_vocabulary_size() << " source / "
                << model.target_vocabulary_size() << " target, default beam size "
                << model.default_beam_size() << "\n";
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string authorization_;
};

v1::DecodingOptions OptionsFromFlags() {
  v1::DecodingOptions options;
  options.set_beam_size(static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_beam_size))));
  options.set_num_hypotheses(
      static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_num_hypotheses))));
  if (const std::optional<float> penalty = absl::GetFlag(FLAGS_length_penalty)) {
    options.set_length_penalty(*penalty);
  }
  options.set_max_decoding_length(
      static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_max_decoding_length))));
  options.set_max_input_length(
      static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_max_input_length))));
  options.set_return_scores(absl::GetFlag(FLAGS_return_scores));
  return options;
}

absl::Status Run() {
  KVMT_ASSIGN_OR_RETURN(const Client client, Client::Connect());
  if (absl::GetFlag(FLAGS_health)) return client.PrintHealth();
  if (absl::GetFlag(FLAGS_list_models)) return client.PrintModels();

  const std::string input = absl::GetFlag(FLAGS_input);
  std::ifstream file;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot open the input file '", input, "'"));
  }
  std::istream& in = input == "-" ? std::cin : file;
  const int batch_size = std::max(1, absl::GetFlag(FLAGS_batch_size));
  const bool tokenized = absl::GetFlag(FLAGS_tokenized);

  v1::TranslateRequest request;
  request.set_model(absl::GetFlag(FLAGS_model));
  *request.mutable_options() = OptionsFromFlags();
  int64_t first_line = 1;
  auto flush = [&]() -> absl::Status {
    if (request.segments().empty()) return absl::OkStatus();
    absl::StatusOr<v1::TranslateResponse> response = client.Translate(request);
    if (!response.ok()) {
      return absl::Status(
          response.status().code(),
          absl::StrCat("lines ", first_line, "-", first_line + request.segments_size() - 1, ": ",
                       absl::StatusCodeToString(response.status().code()), ": ",
                       response.status().message()));
    }
    for (const v1::SegmentResult& result : response->results()) {
      std::cout << FormatSegmentResult(result, tokenized, request.options().return_scores())
                << "\n";
    }
    std::cout.flush();
    first_line += request.segments_size();
    request.clear_segments();
    return absl::OkStatus();
  };
  for (std::string line; std::getline(in, line);) {
    v1::Segment* segment = request.add_segments();
    if (tokenized) {
      for (absl::string_view token :
           absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        segment->add_tokens(std::string(token));
      }
    } else {
      segment->set_text(line);
    }
    if (request.segments_size() >= batch_size) KVMT_RETURN_IF_ERROR(flush());
  }
  return flush();
}

constexpr char kUsage[] =
    "kvmt-client --server HOST:PORT [--input FILE|-] [--stream] [flags]\n"
    "Translates one segment per line through a kvmt-server; one output line per input line.\n"
    "kvmt-client --server HOST:PORT --health | --list-models";

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kvmt::kUsage);
  std::vector<std::string> args = kvmt::KebabToSnakeArgs(argc, argv);
  if (kvmt::AsksForHelp(args)) {
    std::cout << kvmt::KebabUsage(__FILE__);
    return 0;
  }
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), arg_pointers.data());
  if (positional.size() > 1) {
    std::cerr << "kvmt-client: unexpected argument '" << positional[1] << "'\n";
    return 1;
  }
  const absl::Status status = kvmt::Run();
  if (!status.ok()) {
    std::cerr << "kvmt-client: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
