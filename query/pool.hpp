#pragma once
// A small pool of read-only PostgreSQL connections for the query service, separate from the
// projector's connection so reads never queue behind a write transaction. Connections are opened
// lazily and dropped when they break, so the pool heals after a database restart by itself.
// Connections are opened by pg::Connect (role kQuery) and every call runs under a pg::CallGuard,
// so a database that stops answering costs a request its deadline, never a thread for good.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pg/session.hpp"
#include "pg/watchdog.hpp"

#include <pqxx/connection>

namespace xtrace::query {

struct PoolOptions {
  std::string database_url;
  size_t size = 4;
  // Longest a statement may run before PostgreSQL cancels it (the request answers 503).
  std::chrono::milliseconds statement_timeout{5000};
  // Longest a request waits for a free connection.
  std::chrono::milliseconds acquire_timeout{5000};
};

class ConnectionPool {
 public:
  explicit ConnectionPool(PoolOptions options);
  ~ConnectionPool();

  // Runs `work` on a pooled connection; nullopt on success. Database failures become
  // kUnavailable errors (logged with the detail; the client sees a generic message).
  std::optional<common::Error> Run(const std::function<void(pqxx::connection&)>& work);

  // Shutdown: calls still waiting on PostgreSQL at `abandon_at` are abandoned (their requests
  // answer 503), and Run refuses new work from then on.
  void Close(pg::Clock::time_point abandon_at);

 private:
  std::unique_ptr<pqxx::connection> Acquire();
  void Release(std::unique_ptr<pqxx::connection> conn);

  const PoolOptions options_;
  const pg::Session session_;
  pg::Interrupter interrupter_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;  // idle + lent out
};

}  // namespace xtrace::query
