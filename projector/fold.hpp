#pragma once
// Folds decoded WAL records into the projection tables inside a caller-owned transaction.
// Merge rules (API.md): an absent value keeps the stored one, metadata deep-merges, tags union,
// the first timestamp, project and environment of an entity stay, and an observation for an
// unknown trace creates a placeholder that the real trace fills in later.

#include <pqxx/connection>
#include <pqxx/transaction>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/uuid.hpp"
#include "schema/events.hpp"

namespace xtrace::projector {

// A record holding events this build cannot fold (a newer build wrote it). Skipping it would
// lose acknowledged events, so whoever folds must stop at it.
class UnfoldableRecord : public std::runtime_error {
 public:
  UnfoldableRecord(uint64_t seq, const std::string& why) : std::runtime_error(why), seq_(seq) {}
  uint64_t seq() const { return seq_; }

 private:
  uint64_t seq_;
};

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

// Metric series ids by identity (project, environment, name, labels), kept across chunks so that
// points are inserted with their series id and no per-point lookup in SQL. Entries learnt in a
// transaction become visible only after Commit() (a rolled-back transaction may have created
// the series). projection_epoch, bumped by anything that empties metric_series (xtrace-replay
// --rebuild), invalidates the whole cache; FoldRecords checks it under a share lock.
class SeriesCache {
 public:
  // Bound on remembered series; beyond it the cache starts over (ids are re-read, never wrong).
  static constexpr size_t kMaxEntries = 200000;

  const int64_t* Find(const std::string& key) const;
  void Learn(std::string key, int64_t id) { pending_.emplace(std::move(key), id); }
  void Abandon() { pending_.clear(); }  // the last transaction did not commit
  void Begin(int64_t epoch);            // drops pending entries, and everything on an epoch change
  void Commit();                        // after the transaction committed

 private:
  std::map<std::string, int64_t, std::less<>> committed_, pending_;
  int64_t epoch_ = -1;
};

// The rollup cells this projector wrote in its last committed chunk, so that the next chunk, which
// mostly touches the same hour and day cells, need not read them back. Only valid while nobody
// else has written metric_rollups since: every merge bumps rollup_version under the rollup lock,
// and a version other than the one after our own last merge (or a new projection epoch) empties
// the cache. Bounded by one chunk's cells.
class RollupCache {
 public:
  struct State;  // fold.cpp
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

// Folds the records, in order, with set-based statements; re-applying a record this WAL already
// applied to a row changes nothing (see fold.cpp). Call series.Commit() once txn has committed.
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

// Recomputes the derived trace aggregates (latency, total cost) of the given traces from their
// observations, and their contributions to the daily usage rollups: exact whatever order or how
// often records were applied.
void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces);

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
// Adds points to the step rollups (1m, 5m, 1h, 1d), reading (or taking from the cache, for
// projection epoch `epoch`) and merging the touched rollup rows in C++. Feed it only points just
// inserted, so that nothing is counted twice.
void MergeIntoRollups(pqxx::work& txn, const std::vector<InsertedPoint>& points,
                      RollupCache* cache = nullptr, int64_t epoch = -1);

// Empties metric_rollups and rebuilds them from metric_points within txn, reading the points in
// pages (memory stays bounded). Returns the number of points folded.
uint64_t RebuildRollups(pqxx::work& txn);

// RebuildRollups in its own transaction, when points exist but no rollups do: after the
// migration that changed the rollup layout, or a manual TRUNCATE. Returns the number of points
// folded (0 when nothing was missing).
uint64_t RebuildRollupsIfMissing(pqxx::connection& conn);

// Recomputes every trace's derived data (aggregates, daily usage rollups) from the base tables,
// in transactions of `page` traces; safe beside a running projector. Returns the traces done.
uint64_t RefreshAllTraces(pqxx::connection& conn, size_t page = 5000);

}  // namespace xtrace::projector
