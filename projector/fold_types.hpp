#pragma once
// The vocabulary the fold's parts share: the records a chunk folds and the traces it touches.

#include <cstdint>
#include <stdexcept>
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

// Why this build cannot fold the record (it holds events a newer build wrote), or nullptr. Skipping
// such a record would lose acknowledged events, so the loop halts at it, as at an undecodable one.
const char* WhyUnfoldable(const schema::WalRecord& record);

// Thrown by PrepareChunk when given a record WhyUnfoldable refuses: the loop checks first.
class UnfoldableRecord : public std::runtime_error {
 public:
  UnfoldableRecord(uint64_t seq, const std::string& why) : std::runtime_error(why), seq_(seq) {}
  uint64_t seq() const { return seq_; }

 private:
  uint64_t seq_;
};

}  // namespace xtrace::projector
