#include "schema/migrator.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <set>
#include <string>

#include "schema/migrations.hpp"

namespace xtrace::schema {
namespace {

// Arbitrary but fixed: every xtrace process migrating this database takes the same lock.
constexpr long long kMigrationLockKey = 0x78747261636531;  // "xtrace1"

class AdvisoryLock {
 public:
  explicit AdvisoryLock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction(conn_).exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  ~AdvisoryLock() {
    try {
      pqxx::nontransaction(conn_).exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    } catch (const std::exception&) {
      // The lock dies with the session anyway.
    }
  }
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

 private:
  pqxx::connection& conn_;
};

}  // namespace

void ApplyMigrations(pqxx::connection& conn, int up_to) {
  AdvisoryLock lock(conn);
  {
    pqxx::work txn(conn);
    txn.exec0(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    txn.commit();
  }
  for (const auto& m : Migrations()) {
    if (m.version > up_to) break;
    pqxx::work txn(conn);
    const auto done =
        txn.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
    if (!done.empty()) continue;
    txn.exec0(std::string(m.sql));
    txn.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                    std::string(m.name));
    txn.commit();
    spdlog::info("schema: applied migration {}", m.name);
  }
}

bool MigrationsPending(pqxx::connection& conn) {
  pqxx::nontransaction txn(conn);
  if (txn.exec1("SELECT to_regclass('schema_migrations') IS NULL AS missing")["missing"]
          .as<bool>()) {
    return true;
  }
  std::set<int> applied;
  for (const auto& row : txn.exec("SELECT version FROM schema_migrations")) {
    applied.insert(row["version"].as<int>());
  }
  for (const auto& m : Migrations()) {
    if (!applied.contains(m.version)) return true;
  }
  return false;
}

}  // namespace xtrace::schema
