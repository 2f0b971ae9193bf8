#pragma once

#include <pqxx/connection>

#include <cstdint>
#include <string>

namespace xtrace::projector {

// Applies every migration of schema::Migrations() not yet recorded in schema_migrations, each in
// its own transaction, in version order. Safe on every start and from several processes at once:
// a session-level advisory lock serializes them, and the losers find the work done.
// Throws pqxx exceptions on failure.
void ApplyMigrations(pqxx::connection& conn);

// The sequence up to which every projector stream has projected a WAL (0 when one has none yet).
uint64_t LoadCursor(pqxx::connection& conn, const std::string& wal_id);

}  // namespace xtrace::projector
