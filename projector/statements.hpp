#pragma once
// The fold's prepared statements: projector/sql/*.sql, embedded at build time (projector/sql.hpp,
// generated) and prepared on every connection that folds (statements.cpp).

#include <pqxx/connection>

namespace xtrace::projector {

// Sets the planner settings the fold's statements are tuned for and prepares them; call once per
// connection, after the migrations (the statements use functions they create).
void PrepareFoldStatements(pqxx::connection& conn);

}  // namespace xtrace::projector
