#pragma once
// The step rollups of metric points (1m, 5m, 1h, 1d): merged with each chunk's inserted points,
// or rebuilt from metric_points (rollups.cpp).

#include <pqxx/connection>
#include <pqxx/transaction>

#include <cstdint>
#include <memory>
#include <vector>

namespace xtrace::projector {

// Rollups are read, merged in C++ and written back. Two projectors may run at once (the server
// and xtrace-replay), so the read-merge-write of a transaction is serialized by this
// transaction-level advisory lock, always taken before any lock on metric_rollups.
constexpr int64_t kRollupLockKey = 0x78747261636552;  // "xtraceR"

// A metric point a statement has just inserted (not one that was already there).
struct InsertedPoint {
  int64_t series_id;
  int64_t ts_us;
  double value;
};

// The rollup cells this projector wrote in its last committed chunk, so that the next chunk, which
// mostly touches the same hour and day cells, need not read them back. Only valid while nobody
// else has written metric_rollups since: every merge bumps rollup_version under the rollup lock,
// and a version other than the one after our own last merge (or a new projection epoch) empties
// the cache. Bounded by one chunk's cells.
class RollupCache {
 public:
  struct State;  // rollups.cpp
  RollupCache();
  ~RollupCache();
  RollupCache(const RollupCache&) = delete;
  RollupCache& operator=(const RollupCache&) = delete;
  void Abandon();  // the transaction in flight will not commit: forget what it wrote
  void Commit();   // after the transaction that wrote the pending cells committed
  State& state() { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

// Adds points to the step rollups, reading (or taking from the cache, for projection epoch
// `epoch`) and merging the touched rollup rows in C++. Feed it only points just inserted, so that
// nothing is counted twice.
void MergeIntoRollups(pqxx::work& txn, const std::vector<InsertedPoint>& points,
                      RollupCache* cache = nullptr, int64_t epoch = -1);

// Empties metric_rollups and rebuilds them from metric_points within txn, reading the points in
// pages (memory stays bounded). Returns the number of points folded.
uint64_t RebuildRollups(pqxx::work& txn);

// RebuildRollups in its own transaction, when points exist but no rollups do: after the
// migration that changed the rollup layout, or a manual TRUNCATE. Returns the number of points
// folded (0 when nothing was missing).
uint64_t RebuildRollupsIfMissing(pqxx::connection& conn);

}  // namespace xtrace::projector
