#include "query/pool.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>

namespace xtrace::query {

using common::Error;
using common::ErrorCode;

ConnectionPool::ConnectionPool(PoolOptions options) : options_(std::move(options)) {}

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
    auto conn = std::make_unique<pqxx::connection>(options_.database_url);
    pqxx::nontransaction setup(*conn);
    setup.exec0("SET TIME ZONE 'UTC'");
    setup.exec0("SET statement_timeout = " + std::to_string(options_.statement_timeout.count()));
    setup.exec0("SET default_transaction_read_only = on");
    // Read queries here are short and bounded; JIT compilation (which PostgreSQL starts from a
    // cost estimate) cost more than the rollup reads it was meant to speed up.
    setup.exec0("SET jit = off");
    // Large results are read through cursors (query/traces.cpp), always to the end: plan them
    // as the plain statements they replace, not for a fast first row (the default assumes 10%).
    setup.exec0("SET cursor_tuple_fraction = 1.0");
    return conn;
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

std::optional<Error> ConnectionPool::Run(const std::function<void(pqxx::connection&)>& work) {
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = Acquire();
  } catch (const std::exception& e) {
    spdlog::warn("query: cannot connect to the database: {}", e.what());
    return Error::Unavailable("the database is unavailable; retry later");
  }
  if (!conn) return Error::Unavailable("the database is busy; retry later");
  try {
    work(*conn);
    Release(std::move(conn));
    return std::nullopt;
  } catch (const pqxx::broken_connection& e) {
    spdlog::warn("query: database connection lost: {}", e.what());
    conn.reset();
    Release(nullptr);
    return Error::Unavailable("the database is unavailable; retry later");
  } catch (const pqxx::sql_error& e) {
    spdlog::error("query: {} [{}] in: {}", e.what(), e.sqlstate(), e.query());
    Release(std::move(conn));
    if (e.sqlstate() == "57014") return Error::Unavailable("the query took too long; retry later");
    // undefined_table: the database was reached before the first migration ran.
    if (e.sqlstate() == "42P01")
      return Error::Unavailable("the database is not ready; retry later");
    return Error::Internal("internal error");
  } catch (const common::ErrorException& e) {
    Release(std::move(conn));
    return e.error();
  } catch (const std::exception& e) {
    spdlog::error("query: {}", e.what());
    conn.reset();
    Release(nullptr);
    return Error::Internal("internal error");
  }
}

}  // namespace xtrace::query
