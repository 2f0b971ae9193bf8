#include "projector/fold.hpp"

#include "projector/trace_fold.hpp"

namespace xtrace::projector {

// Everything about a chunk that needs no database, rendered ready to send.
struct PreparedChunk {
  MetricChunk metrics;
  TraceChunk traces;
};

void PreparedChunkDeleter::operator()(PreparedChunk* chunk) const {
  delete chunk;
}

PreparedChunkPtr PrepareChunk(const std::vector<SequencedRecord>& records,
                              const common::Uuid& wal_id) {
  PreparedChunkPtr chunk(new PreparedChunk);
  chunk->metrics = PrepareMetricChunk(records);
  chunk->traces = PrepareTraceChunk(records, wal_id.ToString());
  return chunk;
}

void ApplyChunk(pqxx::work& txn, PreparedChunk& chunk, std::set<TraceKey>& touched,
                SeriesCache& series, RollupCache* rollups) {
  // Whatever an earlier, uncommitted transaction learnt is void, even if this chunk has no
  // metric points (its Commit would otherwise publish those entries).
  series.Abandon();
  if (rollups != nullptr) rollups->Abandon();
  // Metric points, then traces: they write disjoint tables, so the order changes no result.
  ApplyMetricChunk(txn, chunk.metrics, series, rollups);
  ApplyTraceChunk(txn, chunk.traces, touched);
}

void FoldRecords(pqxx::work& txn, const std::vector<SequencedRecord>& records,
                 const common::Uuid& wal_id, std::set<TraceKey>& touched, SeriesCache& series) {
  ApplyChunk(txn, *PrepareChunk(records, wal_id), touched, series);
}

}  // namespace xtrace::projector
