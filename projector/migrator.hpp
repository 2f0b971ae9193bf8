#pragma once

#include <pqxx/connection>

namespace xtrace::projector {

// Applies every migration of schema::Migrations() not yet recorded in schema_migrations, each in
// its own transaction, in version order. Safe on every start and from several processes at once:
// a session-level advisory lock serializes them, and the losers find the work done.
// Throws pqxx exceptions on failure.
void ApplyMigrations(pqxx::connection& conn);

}  // namespace xtrace::projector
