// MetricsHttpServer: GET /metrics on a small HTTP server of its own (cpp-httplib, one thread),
// answering with what `render` returns, in the Prometheus text format.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace kvmt {

class MetricsHttpServer {
 public:
  // Listens on `address` ("HOST:PORT"; port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Splits "HOST:PORT" ("[::1]:80" for IPv6) into its parts; the port may be 0.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address);

}  // namespace kvmt
