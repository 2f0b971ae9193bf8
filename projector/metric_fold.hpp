#pragma once
// The metric points of a chunk: series ids from a cache (created or read on a miss), the points
// written with COPY, and the points actually inserted merged into the rollups (metric_fold.cpp).

#include <pqxx/transaction>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "projector/fold_types.hpp"

namespace xtrace::projector {

class RollupCache;  // rollups.hpp

// Metric series ids by identity (project, environment, name, labels), kept across chunks so that
// points are inserted with their series id and no per-point lookup in SQL. Entries learnt in a
// transaction become visible only after Commit() (a rolled-back transaction may have created
// the series). projection_epoch, bumped by anything that empties metric_series (xtrace-replay
// --rebuild), invalidates the whole cache; ApplyMetricChunk checks it under a share lock.
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

// The metric points of a chunk in record order, with their series identities; made without a
// database (PrepareMetricChunk).
struct MetricChunk {
  struct Point {
    size_t series;  // index into keys
    int64_t ts_us;
    double value;
  };
  std::unordered_map<std::string, size_t> index;       // cache key -> position in keys
  std::vector<const std::string*> keys;                // the keys of index, by position
  std::vector<std::array<std::string, 4>> identities;  // project, environment, name, labels
  std::vector<Point> points;
};

// The metric batches among records (others are skipped).
MetricChunk PrepareMetricChunk(const std::vector<SequencedRecord>& records);

// Writes the chunk's points in txn and merges those it inserted into the rollups (rollups.hpp),
// through `rollups` when given. Sorts chunk.points. Call cache.Commit() once txn has committed.
void ApplyMetricChunk(pqxx::work& txn, MetricChunk& chunk, SeriesCache& cache,
                      RollupCache* rollups);

}  // namespace xtrace::projector
