#include "query/pool.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/connection>
#include <pqxx/except>

namespace xtrace::query {

using common::Error;
using common::ErrorCode;

ConnectionPool::ConnectionPool(PoolOptions options)
    : options_(std::move(options)),
      session_(pg::SessionFor(pg::Role::kQuery, options_.statement_timeout)) {}

ConnectionPool::~ConnectionPool() = default;

std::unique_ptr<pqxx::connection> ConnectionPool::Acquire() {
  std::unique_lock lock(mu_);
  const bool got = cv_.wait_for(lock, options_.acquire_timeout,
                                [&] { return !idle_.empty() || open_ < options_.size; });
  if (!got) return nullptr;
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }
  ++open_;
  lock.unlock();
  try {
    return pg::Connect(options_.database_url, session_, &interrupter_);
  } catch (...) {
    lock.lock();
    --open_;
    cv_.notify_one();
    throw;
  }
}

void ConnectionPool::Release(std::unique_ptr<pqxx::connection> conn) {
  std::lock_guard lock(mu_);
  if (conn && conn->is_open()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  cv_.notify_one();
}

void ConnectionPool::Close(pg::Clock::time_point abandon_at) {
  interrupter_.InterruptAt(abandon_at);
}

std::optional<Error> ConnectionPool::Run(const std::function<void(pqxx::connection&)>& work) {
  if (interrupter_.Interrupted()) return Error::Unavailable("the server is shutting down");
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = Acquire();
  } catch (const std::exception& e) {
    spdlog::warn("query: cannot connect to the database: {}", e.what());
    return Error::Unavailable("the database is unavailable; retry later");
  }
  if (!conn) return Error::Unavailable("the database is busy; retry later");
  // The guard ends before the connection goes back to the pool or is closed: the watchdog must
  // never shut down a socket another request (or another connection) is using.
  std::optional<pg::CallGuard> guard(std::in_place, *conn, session_.call_deadline(), &interrupter_);
  try {
    work(*conn);
    guard.reset();
    Release(std::move(conn));
    return std::nullopt;
  } catch (const pqxx::broken_connection& e) {
    spdlog::warn("query: database connection lost: {}", e.what());
    guard.reset();
    conn.reset();
    Release(nullptr);
    return Error::Unavailable("the database is unavailable; retry later");
  } catch (const pqxx::sql_error& e) {
    const bool abandoned = guard->fired();
    guard.reset();
    if (abandoned) {  // the watchdog closed the socket: whatever libpq reported, it is gone
      spdlog::warn("query: database connection abandoned: {}", e.what());
      conn.reset();
      Release(nullptr);
      return Error::Unavailable("the database is unavailable; retry later");
    }
    spdlog::error("query: {} [{}] in: {}", e.what(), e.sqlstate(), e.query());
    Release(std::move(conn));
    if (e.sqlstate() == "57014") return Error::Unavailable("the query took too long; retry later");
    // lock_not_available: lock_timeout, behind DDL or a TRUNCATE (xtrace-replay --rebuild).
    if (e.sqlstate() == "55P03") return Error::Unavailable("the database is busy; retry later");
    // undefined_table: the database was reached before the first migration ran.
    if (e.sqlstate() == "42P01")
      return Error::Unavailable("the database is not ready; retry later");
    return Error::Internal("internal error");
  } catch (const common::ErrorException& e) {
    guard.reset();
    Release(std::move(conn));
    return e.error();
  } catch (const std::exception& e) {
    spdlog::error("query: {}", e.what());
    guard.reset();
    conn.reset();
    Release(nullptr);
    return Error::Internal("internal error");
  }
}

}  // namespace xtrace::query
