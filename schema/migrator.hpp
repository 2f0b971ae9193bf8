#pragma once
// Applies the SQL migrations of schema/migrations/ (migrations.hpp) to a PostgreSQL database.

#include <pqxx/connection>

#include <limits>

namespace xtrace::schema {

// Applies every migration of Migrations() not yet recorded in schema_migrations, each in its own
// transaction, in version order. Safe on every start and from several processes at once: a
// session-level advisory lock serializes them, and the losers find the work done.
// Throws pqxx exceptions on failure. `up_to` stops after that version: tests of a migration
// fill the schema it starts from, then apply it.
void ApplyMigrations(pqxx::connection& conn, int up_to = std::numeric_limits<int>::max());

// Whether ApplyMigrations has anything to do: one quick read, so a caller can tell a healthy
// database from a stuck one before starting work that may legitimately take long.
bool MigrationsPending(pqxx::connection& conn);

}  // namespace xtrace::schema
