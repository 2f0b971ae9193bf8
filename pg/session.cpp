#include "pg/session.hpp"

#include <cctype>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "pg/conninfo.hpp"

namespace xtrace::pg {
namespace {

using std::chrono::milliseconds;

// Whether `options` (libpq's "options" parameter: -c name=value / --name=value) sets `name`.
bool OptionsSet(std::string_view options, std::string_view name) {
  const std::string needle = std::string(name) + "=";
  for (size_t at = options.find(needle); at != std::string_view::npos;
       at = options.find(needle, at + 1)) {
    const char before = at == 0 ? ' ' : options[at - 1];
    if (before == ' ' || before == '-' || before == '\t') return true;
  }
  return false;
}

}  // namespace

std::optional<milliseconds> ConnectTimeout(const std::string& database_url) {
  const std::string v = ValueOf(WithDefaults(database_url, NetworkDefaults()), "connect_timeout");
  const char* env = std::getenv("PGCONNECT_TIMEOUT");
  const std::string text = !v.empty() ? v : (env != nullptr ? env : "");
  const long seconds = std::strtol(text.c_str(), nullptr, 10);
  if (seconds <= 0) return std::nullopt;
  return std::chrono::seconds(std::max(2L, seconds));  // libpq's own floor
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kProjector: return "projector";
    case Role::kQuery: return "query";
    case Role::kTool: return "tool";
  }
  return "?";
}

Session SessionFor(Role role, std::optional<milliseconds> statement_timeout) {
  Session s;
  s.role = role;
  switch (role) {
    case Role::kProjector:
      // A chunk statement folds up to 4096 records into tables of millions of rows and takes
      // seconds on a large backlog; migrations and the rollup rebuild at connect run here too.
      s.statement_timeout = milliseconds(300000);
      // The projector waits for the rollup lock while xtrace-replay holds it: legitimate, and
      // bounded by the statement timeout.
      s.lock_timeout = milliseconds(0);
      // Between a chunk's statements the projector only folds in memory (milliseconds).
      s.idle_in_transaction_timeout = milliseconds(60000);
      break;
    case Role::kQuery:
      s.statement_timeout = milliseconds(5000);
      // A read only ever waits behind DDL or TRUNCATE (migration, xtrace-replay --rebuild):
      // answer 503 soon rather than pile requests up behind it.
      s.lock_timeout = milliseconds(1000);
      s.idle_in_transaction_timeout = milliseconds(60000);
      s.read_only = true;
      // Reads here are short and bounded; JIT compilation (which PostgreSQL starts from a cost
      // estimate) cost more than the rollup reads it was meant to speed up.
      s.jit = false;
      s.cursors_read_whole = true;
      break;
    case Role::kTool:
      // Rebuilding every rollup from metric_points is one statement over the whole table.
      s.statement_timeout = milliseconds(3600000);
      // TRUNCATE and the epoch update queue every later reader behind them while they wait.
      s.lock_timeout = milliseconds(60000);
      s.idle_in_transaction_timeout = milliseconds(300000);
      break;
  }
  if (statement_timeout) s.statement_timeout = *statement_timeout;
  if (s.lock_timeout > s.statement_timeout) s.lock_timeout = s.statement_timeout;
  return s;
}

std::unique_ptr<pqxx::connection> Connect(const std::string& database_url, const Session& session,
                                          const Interrupter* interrupter) {
  const std::string conninfo = WithDefaults(database_url, NetworkDefaults());
  if (interrupter != nullptr && interrupter->Interrupted()) {
    throw pqxx::broken_connection("not connecting: shutting down");
  }
  auto conn = std::make_unique<pqxx::connection>(conninfo);

  std::string options = ValueOf(conninfo, "options");
  if (const char* env = std::getenv("PGOPTIONS")) options += std::string(" ") + env;
  // Timeouts are tunables: the operator's own (in the URL's options) win. The time zone and
  // read-only mode are what the code relies on, so they are always set.
  const std::pair<const char*, milliseconds> timeouts[] = {
      {"statement_timeout", session.statement_timeout},
      {"lock_timeout", session.lock_timeout},
      {"idle_in_transaction_session_timeout", session.idle_in_transaction_timeout},
  };
  // The set-up is a few SETs: it gets as long as the connect did.
  CallGuard guard(*conn, ConnectTimeout(database_url).value_or(session.call_deadline()),
                  interrupter);
  // set_variable, not SET: libpqxx restores these if it ever re-establishes the connection.
  for (const auto& [name, value] : timeouts) {
    if (!OptionsSet(options, name)) conn->set_variable(name, std::to_string(value.count()));
  }
  conn->set_variable("TimeZone", "'UTC'");
  if (session.read_only) conn->set_variable("default_transaction_read_only", "on");
  if (!session.jit) conn->set_variable("jit", "off");
  if (session.cursors_read_whole) conn->set_variable("cursor_tuple_fraction", "1.0");
  return conn;
}

}  // namespace xtrace::pg
