#include "support/pg.hpp"

#include "support/command.hpp"

#include <gtest/gtest.h>
#include <pqxx/connection>
#include <pqxx/nontransaction>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <signal.h>

namespace xtrace::testing {

std::string ClusterUrl(const std::string& database) {
  const char* dir = std::getenv("XTRACE_TEST_PG_DIR");
  if (dir == nullptr) dir = XTRACE_TEST_PG_DIR_DEFAULT;
  std::ifstream port_file(std::string(dir) + "/port");
  std::string port;
  if (!(port_file >> port))
    throw std::runtime_error(std::string("no test PostgreSQL cluster in ") + dir +
                             " (ctest starts it: run the tests through ctest)");
  return "postgresql://postgres@127.0.0.1:" + port + "/" + database;
}

namespace {

std::string RunScript(const std::string& args) {
  const auto run = RunCommand(std::string(XTRACE_SOURCE_DIR) + "/tools/pg-local.sh " + args);
  if (run.exit_code != 0)
    throw std::runtime_error("pg-local.sh " + args + " failed: " + run.output);
  std::string out = run.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

PrivateCluster::PrivateCluster() {
  char tmpl[] = "/tmp/xtrace-pg-XXXXXX";
  dir_ = mkdtemp(tmpl);
  // The URL is the script's last line; retries on a port clash may print before it.
  url_ = RunScript("start " + dir_ + " auto");
  url_ = url_.substr(url_.rfind('\n') + 1);
  port_ = url_.substr(url_.rfind(':') + 1);
  port_ = port_.substr(0, port_.find('/'));
}

PrivateCluster::~PrivateCluster() {
  Resume();
  try {
    RunScript("stop " + dir_);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void PrivateCluster::Pause() {
  std::ifstream pid_file(dir_ + "/data/postmaster.pid");
  pid_t postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0)
    throw std::runtime_error("no postmaster.pid in " + dir_);
  // The postmaster first, so it starts no new child while the others are stopped.
  if (kill(postmaster, SIGSTOP) != 0) throw std::runtime_error("cannot SIGSTOP the postmaster");
  paused_.push_back(postmaster);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid …; comm may hold spaces, so parse after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == postmaster) {
      const pid_t pid = std::stoi(name);
      if (kill(pid, SIGSTOP) == 0) paused_.push_back(pid);
    }
  }
}

void PrivateCluster::Resume() {
  for (const pid_t pid : paused_) kill(pid, SIGCONT);
  paused_.clear();
}

void PrivateCluster::Stop() {
  RunScript("stop " + dir_);
}

void PrivateCluster::Start() {
  RunScript("start " + dir_ + " " + port_);
}

TestDatabase::TestDatabase() {
  std::random_device rd;
  name_ = "xt_test_" + std::to_string(rd()) + std::to_string(rd());
  pqxx::connection admin(ClusterUrl("postgres"));
  pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name_);
  url_ = ClusterUrl(name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(ClusterUrl("postgres"));
    pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot drop " << name_ << ": " << e.what();
  }
}

}  // namespace xtrace::testing
