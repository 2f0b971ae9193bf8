#pragma once
// The fixture of the end-to-end tests: a database of its own, a WAL directory, and the real
// xtrace-server binary started on them before each test; the server's log is printed when the
// test fails.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace::testing {

class ServerFixture : public ::testing::Test {
 protected:
  explicit ServerFixture(std::string token);

  // What the server is started with: the database, the token, the WAL directory, and ExtraEnv().
  std::map<std::string, std::string> Env() const;
  // Settings a fixture adds or overrides.
  virtual std::map<std::string, std::string> ExtraEnv() const { return {}; }

  void SetUp() override;
  void TearDown() override;

  // Requests to the server with the bearer token.
  HttpResult Get(const std::string& target) const;
  HttpResult PostBatch(const std::string& body) const;  // POST /v1/l/batch, JSON
  // Waits until the WAL holds a record and the projector has folded every record it holds.
  bool WaitProjected(std::chrono::milliseconds timeout = kWaitTimeout) const;

  const std::string token_;
  const std::map<std::string, std::string> auth_;       // Authorization: Bearer <token>
  const std::map<std::string, std::string> auth_json_;  // the same and a JSON Content-Type
  TestDatabase db_;
  TempDir wal_dir_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace xtrace::testing
