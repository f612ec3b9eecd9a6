// A kvmt-server (or any tool) run as a child process of a test, on loopback ports the server
// picks itself (port 0), read back from its log, so that tests running in parallel never
// collide. The child is killed if the test ends without stopping it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kvmt::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// A path in the test's temporary folder, unique to the running test and process.
inline std::string TempPath(const std::string& name) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(::testing::TempDir(), "/kvmt_", test->test_suite_name(), "_", test->name(),
                      "_", getpid(), "_", name);
}

// Runs `program args...` with stdin from `stdin_path` and its output in two files; returns the
// child's pid (or -1).
inline pid_t Spawn(const std::string& program, const std::vector<std::string>& args,
                   const std::string& stdin_path, const std::string& stdout_path,
                   const std::string& stderr_path) {
  std::vector<std::string> argv_storage = {program};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int in = open(stdin_path.c_str(), O_RDONLY);
  const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0 || err < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  execv(program.c_str(), argv.data());
  _exit(127);
}

// Waits up to `timeout` for `pid`: its exit status, 128 + the signal that killed it, or -1 when
// it is still running.
inline int WaitForExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0 || std::chrono::steady_clock::now() > give_up) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command-line tool to the end (at most two minutes).
inline ToolRun RunTool(const std::string& program, const std::vector<std::string>& args,
                       const std::string& stdin_text = "") {
  static int runs = 0;
  const std::string base = TempPath(absl::StrCat("run", runs++));
  WriteFile(base + ".in", stdin_text);
  const pid_t pid = Spawn(program, args, base + ".in", base + ".out", base + ".err");
  ToolRun run;
  run.exit_code = WaitForExit(pid, std::chrono::minutes(2));
  if (run.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  run.out = ReadFile(base + ".out");
  run.err = ReadFile(base + ".err");
  return run;
}

class ServerProcess {
 public:
  // Starts KVMT_SERVER_BIN with `args` plus loopback listen addresses on free ports, and waits
  // until it serves.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(std::vector<std::string> args) {
    static int servers = 0;
    auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
    server->log_path_ = TempPath(absl::StrCat("server", servers++, ".log"));
    const std::string null_in = TempPath("empty_stdin");
    WriteFile(null_in, "");
    args.push_back("--listen=127.0.0.1:0");
    args.push_back("--metrics-listen=127.0.0.1:0");
    server->pid_ =
        Spawn(KVMT_SERVER_BIN, args, null_in, server->log_path_ + ".out", server->log_path_);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    const std::regex metrics("metrics on http://127\\.0\\.0\\.1:(\\d+)");
    while (true) {
      const std::string log = server->log();
      std::smatch port;
      std::smatch metrics_port;
      if (log.find(" serving\n") != std::string::npos && std::regex_search(log, port, listening) &&
          std::regex_search(log, metrics_port, metrics)) {
        server->port_ = std::stoi(port[1]);
        server->metrics_port_ = std::stoi(metrics_port[1]);
        return server;
      }
      int status = 0;
      if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
        server->pid_ = -1;
        return absl::InternalError(absl::StrCat("kvmt-server exited at start-up:\n", log));
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return absl::DeadlineExceededError(absl::StrCat("kvmt-server did not start:\n", log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string log() const { return ReadFile(log_path_); }
  pid_t pid() const { return pid_; }

  // Sends SIGTERM and returns the exit status, or -1 when it has not exited within `timeout`.
  int Terminate(std::chrono::milliseconds timeout) {
    kill(pid_, SIGTERM);
    const int status = WaitForExit(pid_, timeout);
    if (status != -1) pid_ = -1;
    return status;
  }

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string log_path_;
};

}  // namespace kvmt::testing
