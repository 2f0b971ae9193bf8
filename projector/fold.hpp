#pragma once
// Folds decoded WAL records into the projection tables inside a caller-owned transaction.
// Merge rules (API.md): an absent value keeps the stored one, metadata deep-merges, tags union,
// the first timestamp, project and environment of an entity stay, and an observation for an
// unknown trace creates a placeholder that the real trace fills in later.

#include <pqxx/connection>
#include <pqxx/transaction>

#include <set>
#include <string>

#include "schema/events.hpp"

namespace xtrace::projector {

// Prepares the statements Fold uses; call once per connection.
void PrepareFoldStatements(pqxx::connection& conn);

// Folds one record. `touched` collects the (project, trace id) pairs whose observations changed;
// call RefreshTraceAggregates with it before committing.
struct TraceKey {
  std::string project_id;
  std::string trace_id;
  friend auto operator<=>(const TraceKey&, const TraceKey&) = default;
};
void Fold(pqxx::work& txn, const schema::WalRecord& record, std::set<TraceKey>& touched);

// Recomputes the derived trace aggregates (latency, total cost) of the given traces from their
// observations: exact whatever order or how often records were applied.
void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces);

}  // namespace xtrace::projector
