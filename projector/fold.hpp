#pragma once
// Folds decoded WAL records into the projection tables inside a caller-owned transaction.
// Merge rules (API.md): an absent value keeps the stored one, metadata deep-merges, tags union,
// the first timestamp, project and environment of an entity stay, and an observation for an
// unknown trace creates a placeholder that the real trace fills in later.

#include <pqxx/connection>
#include <pqxx/transaction>

#include "schema/events.hpp"

namespace xtrace::projector {

// Prepares the statements Fold uses; call once per connection.
void PrepareFoldStatements(pqxx::connection& conn);

void Fold(pqxx::work& txn, const schema::WalRecord& record);

}  // namespace xtrace::projector
