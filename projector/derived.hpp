#pragma once
// Data derived from the traces and observations: the trace aggregates and the daily usage
// rollups (derived.cpp).

#include <pqxx/connection>
#include <pqxx/transaction>

#include <cstddef>
#include <cstdint>
#include <set>

#include "projector/fold_types.hpp"

namespace xtrace::projector {

// Recomputes the derived trace aggregates (latency, total cost) of the given traces from their
// observations, and their contributions to the daily usage rollups: exact whatever order or how
// often records were applied.
void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces);

// Recomputes every trace's derived data (aggregates, daily usage rollups) from the base tables,
// in transactions of `page` traces; safe beside a running projector. Returns the traces done.
uint64_t RefreshAllTraces(pqxx::connection& conn, size_t page = 5000);

}  // namespace xtrace::projector
