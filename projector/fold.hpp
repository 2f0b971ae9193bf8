#pragma once
// Folds decoded WAL records into the projection tables inside a caller-owned transaction.
// Merge rules (API.md): an absent value keeps the stored one, metadata deep-merges, tags union,
// the first timestamp, project and environment of an entity stay, and an observation for an
// unknown trace creates a placeholder that the real trace fills in later.
//
// The fold's entry point; its parts, one job each, are included here for the fold's callers:
//   trace_fold.hpp   traces and observations: waves, placeholders, provenance
//   metric_fold.hpp  metric points: SeriesCache, COPY of points
//   rollups.hpp      step rollups of the points: merge, rebuild, RollupCache
//   derived.hpp      trace aggregates and daily usage rollups, RefreshAllTraces
//   statements.hpp   preparing the statements (projector/sql/*.sql) on a connection
// Call PrepareFoldStatements once per connection; after the records of a transaction, call
// RefreshTraceAggregates with the touched traces before committing.

#include <pqxx/transaction>

#include <memory>
#include <set>
#include <vector>

#include "common/uuid.hpp"
#include "projector/derived.hpp"
#include "projector/fold_types.hpp"
#include "projector/metric_fold.hpp"
#include "projector/rollups.hpp"
#include "projector/statements.hpp"

namespace xtrace::projector {

// Folds the records, in order, with set-based statements; re-applying a record this WAL already
// applied to a row changes nothing (see trace_fold.cpp). `touched` collects the traces a record
// changed or whose observations it changed. Call series.Commit() once txn has committed.
void FoldRecords(pqxx::work& txn, const std::vector<SequencedRecord>& records,
                 const common::Uuid& wal_id, std::set<TraceKey>& touched, SeriesCache& series);

// FoldRecords in two halves: PrepareChunk does everything that needs no database (grouping
// events into waves, rendering the statements' arguments) and may run on another thread while
// an earlier chunk is applied; ApplyChunk runs the statements in txn. The prepared chunk owns
// all it needs: the records may be freed once it is made.
struct PreparedChunk;
struct PreparedChunkDeleter {
  void operator()(PreparedChunk* chunk) const;
};
using PreparedChunkPtr = std::unique_ptr<PreparedChunk, PreparedChunkDeleter>;
PreparedChunkPtr PrepareChunk(const std::vector<SequencedRecord>& records,
                              const common::Uuid& wal_id);
void ApplyChunk(pqxx::work& txn, PreparedChunk& chunk, std::set<TraceKey>& touched,
                SeriesCache& series, RollupCache* rollups = nullptr);

}  // namespace xtrace::projector
