#pragma once
// Opening a PostgreSQL connection for one role of xtrace, the single place where each role's
// session is defined. Every connection of the server and of the tools is opened here:
//   - the network defaults of conninfo.hpp (connect timeout, TCP keepalives, TCP user timeout)
//     are added to the operator's URL wherever it does not set them;
//   - the role's session settings (statement, lock and idle-in-transaction timeouts, time zone,
//     read-only) are set right after connecting, under the watchdog.
// Callers guard their own calls with CallGuard(conn, session.call_deadline(), …).

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "pg/watchdog.hpp"

#include <pqxx/connection>

namespace xtrace::pg {

enum class Role {
  kProjector,  // the projector streams, and start-up migration: writes, chunks of many rows
  kQuery,      // the read-only query pool behind the HTTP API
  kTool,       // command-line tools (xtrace-replay): bulk rebuilds, run by an operator
};
const char* RoleName(Role role);

struct Session {
  Role role = Role::kTool;
  std::chrono::milliseconds statement_timeout{0};
  std::chrono::milliseconds lock_timeout{0};  // 0: bounded by the statement timeout alone
  std::chrono::milliseconds idle_in_transaction_timeout{0};
  bool read_only = false;
  bool jit = true;
  // Set when results are read through cursors to the end (the trace reads): plan them as the
  // plain statements they replace, not for a fast first row (PostgreSQL assumes 10%).
  bool cursors_read_whole = false;

  // The client-side deadline of a call (CallGuard): the server's own statement timeout plus the
  // time for its error to arrive. It fires only when the server is stuck, not slow.
  std::chrono::milliseconds call_deadline() const { return statement_timeout + kAnswerSlack; }
  static constexpr std::chrono::milliseconds kAnswerSlack{2000};
};

// The session of `role`. `statement_timeout` replaces the role's default (the server's
// XTRACE_QUERY_TIMEOUT_MS and XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS).
Session SessionFor(Role role, std::optional<std::chrono::milliseconds> statement_timeout = {});

// The connect timeout `database_url` gets (its own connect_timeout, else PGCONNECT_TIMEOUT, else
// the default), as libpq applies it: whole seconds, at least 2; nullopt when unbounded.
std::optional<std::chrono::milliseconds> ConnectTimeout(const std::string& database_url);

// Opens a connection to `database_url` for `session`. The connect is bounded by connect_timeout;
// the session setup that follows by the same time (at least 2 s), under the watchdog, and
// `interrupter` (may be null) ends it early. A session setting the URL's `options` (or
// PGOPTIONS) already sets, as `-c name=value`, is left as the operator set it. Throws pqxx
// exceptions (broken_connection when the server cannot be reached or does not answer in time)
// and std::invalid_argument for a URL libpq cannot parse.
std::unique_ptr<pqxx::connection> Connect(const std::string& database_url, const Session& session,
                                          const Interrupter* interrupter = nullptr);

}  // namespace xtrace::pg
