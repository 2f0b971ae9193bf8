#include "support/server_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/wait.hpp"

namespace xtrace::testing {

std::string ServerBinary() {
  const char* bin = std::getenv("XTRACE_SERVER_BIN");
  return bin != nullptr ? bin : XTRACE_SERVER_BIN_DEFAULT;
}

ServerProcess::ServerProcess(std::map<std::string, std::string> env) : env_(std::move(env)) {
  char tmpl[] = "/tmp/xtrace-server-log-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  log_path_ = tmpl;
  port_file_ = log_path_ + ".port";
}

ServerProcess::~ServerProcess() {
  Kill();
  std::filesystem::remove(log_path_);
  std::filesystem::remove(port_file_);
}

namespace {

// The port in a port file, or 0 while there is none. The server renames the file into place
// whole, so a file that exists is complete.
uint16_t ReadPort(const std::string& path) {
  std::ifstream in(path);
  unsigned port = 0;
  if (!(in >> port) || port == 0 || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

}  // namespace

bool ServerProcess::Start() {
  port_ = 0;
  std::filesystem::remove(port_file_);  // a previous start's port
  std::map<std::string, std::string> env = env_;
  env["BIND_ADDR"] = "127.0.0.1:0";
  env["XTRACE_PORT_FILE"] = port_file_;
  env["PATH"] = "/usr/bin:/bin";
  // Sanitizer builds: the server reports where the test run collects reports (tools/test.sh).
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && env.count(name) == 0) env[name] = value;
  }
  std::vector<std::string> storage;
  for (const auto& [k, v] : env) storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string bin = ServerBinary();

  pid_ = fork();
  if (pid_ == 0) {
    FILE* log = std::fopen(log_path_.c_str(), "a");
    if (log != nullptr) {
      dup2(fileno(log), STDOUT_FILENO);
      dup2(fileno(log), STDERR_FILENO);
    }
    char* argv[] = {const_cast<char*>(bin.c_str()), nullptr};
    execve(bin.c_str(), argv, envp.data());
    _exit(127);
  }
  bool exited = false;
  const bool answered = WaitUntil(
      [&] {
        int status = 0;
        exited = waitpid(pid_, &status, WNOHANG) == pid_;
        if (exited) return true;
        if (port_ == 0) port_ = ReadPort(port_file_);
        return port_ != 0 && Http(port_, "GET", "/healthz").status == 200;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(10));
  if (exited) pid_ = -1;
  return answered && !exited;
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ServerProcess::StopWithin(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      Kill();
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/xtrace-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace xtrace::testing
