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

// Whether ApplyMigrations has anything to do: one quick read, so a caller can tell a healthy
// database from a stuck one before starting work that may legitimately take long.
bool MigrationsPending(pqxx::connection& conn);

// The stored positions of a WAL's projector streams: `least` is what every stream has
// projected (0 when one has none yet), `furthest` the position of the stream furthest ahead.
struct StoredCursors {
  uint64_t least = 0;
  uint64_t furthest = 0;
};
StoredCursors LoadCursors(pqxx::connection& conn, const std::string& wal_id);

}  // namespace xtrace::projector
