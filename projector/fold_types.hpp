#pragma once
// The vocabulary the fold's parts share: the records a chunk folds and the traces it touches.

#include <cstdint>
#include <string>

#include "schema/events.hpp"

namespace xtrace::projector {

// A decoded record with its WAL sequence number.
struct SequencedRecord {
  uint64_t seq;
  const schema::WalRecord* record;
};

// A trace a chunk changed, or whose observations it changed: its derived data are refreshed
// (RefreshTraceAggregates, derived.hpp) before the transaction commits.
struct TraceKey {
  std::string project_id;
  std::string trace_id;
  friend auto operator<=>(const TraceKey&, const TraceKey&) = default;
};

}  // namespace xtrace::projector
