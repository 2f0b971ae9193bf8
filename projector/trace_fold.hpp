#pragma once
// The trace and observation events of a chunk, folded set-based in waves (trace_fold.cpp).

#include <pqxx/transaction>

#include <set>
#include <string>
#include <vector>

#include "projector/fold_types.hpp"

namespace xtrace::projector {

// A chunk's trace and observation events, rendered as the array literals of the statements'
// parameters; made without a database (PrepareTraceChunk) and applied later (ApplyTraceChunk).
struct TraceChunk {
  std::vector<std::string> placeholders;  // sql/insert_placeholders.sql; empty: none
  struct Wave {
    std::vector<std::string> traces;        // sql/upsert_traces.sql; empty: none
    std::vector<std::string> observations;  // sql/upsert_observations.sql; empty: none
  };
  std::vector<Wave> waves;
  std::set<TraceKey> touched;  // traces the chunk's own events name
};

// The trace batches among records (others are skipped), for the WAL with id `wal`.
TraceChunk PrepareTraceChunk(const std::vector<SequencedRecord>& records, const std::string& wal);

// Runs the chunk's statements in txn and adds every trace whose derived data changed to touched.
void ApplyTraceChunk(pqxx::work& txn, const TraceChunk& chunk, std::set<TraceKey>& touched);

}  // namespace xtrace::projector
