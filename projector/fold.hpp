#pragma once
// Folds decoded WAL records into the projection tables inside a caller-owned transaction.
// Merge rules (API.md): an absent value keeps the stored one, metadata deep-merges, tags union,
// the first timestamp, project and environment of an entity stay, and an observation for an
// unknown trace creates a placeholder that the real trace fills in later.

#include <pqxx/connection>
#include <pqxx/transaction>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/uuid.hpp"
#include "schema/events.hpp"

namespace xtrace::projector {

// Prepares the statements Fold uses; call once per connection.
void PrepareFoldStatements(pqxx::connection& conn);

// `touched` collects the (project, trace id) pairs of every trace a record changed or whose
// observations it changed; call RefreshTraceAggregates with it before committing.
struct TraceKey {
  std::string project_id;
  std::string trace_id;
  friend auto operator<=>(const TraceKey&, const TraceKey&) = default;
};
struct SequencedRecord {
  uint64_t seq;
  const schema::WalRecord* record;
};
// Folds the records, in order, with set-based statements; re-applying a record this WAL already
// applied to a row changes nothing (see fold.cpp).
void FoldRecords(pqxx::work& txn, const std::vector<SequencedRecord>& records,
                 const common::Uuid& wal_id, std::set<TraceKey>& touched);

// Recomputes the derived trace aggregates (latency, total cost) of the given traces from their
// observations, and their contributions to the daily usage rollups: exact whatever order or how
// often records were applied.
void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces);

}  // namespace xtrace::projector
