#pragma once
// Applies the SQL migrations of schema/migrations/ (migrations.hpp) to a PostgreSQL database.

#include <pqxx/connection>

namespace xtrace::schema {

// Applies every migration of Migrations() not yet recorded in schema_migrations, each in its own
// transaction, in version order. Safe on every start and from several processes at once: a
// session-level advisory lock serializes them, and the losers find the work done.
// Throws pqxx exceptions on failure.
void ApplyMigrations(pqxx::connection& conn);

// Whether ApplyMigrations has anything to do: one quick read, so a caller can tell a healthy
// database from a stuck one before starting work that may legitimately take long.
bool MigrationsPending(pqxx::connection& conn);

}  // namespace xtrace::schema
