#pragma once
// Runs the real xtrace-server binary as a child process on loopback. The server binds port 0
// (BIND_ADDR=127.0.0.1:0) and reports the port the kernel gave it in its XTRACE_PORT_FILE, so
// no port is picked by the test and then raced for.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace xtrace::testing {

class ServerProcess {
 public:
  // `env` is added to a minimal environment (PATH only) so the host's settings never leak in.
  explicit ServerProcess(std::map<std::string, std::string> env);
  ~ServerProcess();  // kill -9 if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary, waits for its port file, then until /healthz answers; false on timeout
  // or early exit. Each start gets a new port.
  bool Start();
  // SIGTERM and wait; returns the exit status (or -1).
  int Stop();
  // SIGTERM and wait at most `limit`, then SIGKILL. The exit status, or -1 when it had to be
  // killed.
  int StopWithin(std::chrono::milliseconds limit);
  // SIGKILL and reap.
  void Kill();
  bool Running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // -1 when not running

  uint16_t port() const { return port_; }  // 0 until Start() has read it
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

 private:
  std::map<std::string, std::string> env_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string log_path_;
  std::string port_file_;
};

// Path of the built xtrace-server (XTRACE_SERVER_BIN overrides the build tree's binary).
std::string ServerBinary();

// A fresh temporary directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace xtrace::testing
