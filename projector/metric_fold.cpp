#include "projector/metric_fold.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/except>
#include <pqxx/result>
#include <pqxx/stream_to>
#include <pqxx/subtransaction>

#include <algorithm>
#include <tuple>
#include <variant>

#include "common/pg_text.hpp"
#include "projector/params.hpp"
#include "projector/rollups.hpp"
#include "projector/sanitize.hpp"
#include "projector/sql.hpp"

namespace xtrace::projector {
namespace {

// Labels as a JSON object in key order; a repeated key keeps its last value, as jsonb does.
std::string LabelsJson(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::map<std::string_view, std::string_view> sorted;
  for (const auto& [k, v] : labels) sorted[k] = v;
  boost::json::object o;
  for (const auto& [k, v] : sorted) o[k] = v;
  return boost::json::serialize(o);
}

// A series' cache key: its identity as sent, each part length-prefixed (parts may hold any
// byte). Labels in another order make another key for the same series, which only costs a
// second cache entry; the identity stored is canonical.
void AppendKeyPart(std::string& key, std::string_view part) {
  const auto n = static_cast<uint32_t>(part.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(part);
}

void AddMetrics(MetricChunk& chunk, const schema::WalRecord& rec, const schema::MetricBatch& m) {
  std::string key;
  for (const auto& p : m.points) {
    key.clear();
    AppendKeyPart(key, rec.project_id);
    AppendKeyPart(key, rec.environment);
    AppendKeyPart(key, p.name);
    for (const auto& [k, v] : p.labels) {
      AppendKeyPart(key, k);
      AppendKeyPart(key, v);
    }
    auto [it, added] = chunk.index.try_emplace(key, chunk.keys.size());
    if (added) {
      chunk.keys.push_back(&it->first);  // node-based map: the key stays where it is
      chunk.identities.push_back({Text(rec.project_id), Text(rec.environment), SanitizeText(p.name),
                                  SanitizeJson(LabelsJson(p.labels))});
    }
    chunk.points.push_back({it->second, p.timestamp.time_since_epoch().count(), p.value});
  }
}

// The series id of every key in the chunk, from the cache or else from sql/resolve_series.sql
// (which creates the series not stored yet).
std::vector<int64_t> ResolveSeries(pqxx::work& txn, const MetricChunk& chunk, SeriesCache& cache) {
  std::vector<int64_t> ids(chunk.keys.size(), 0);
  std::vector<size_t> missing;
  for (size_t i = 0; i < chunk.keys.size(); ++i) {
    if (const int64_t* id = cache.Find(*chunk.keys[i])) {
      ids[i] = *id;
    } else {
      missing.push_back(i);
    }
  }
  if (missing.empty()) return ids;
  std::array<std::vector<std::string>, 4> columns;
  for (const size_t i : missing) {
    for (size_t c = 0; c < 4; ++c) columns[c].push_back(chunk.identities[i][c]);
  }
  const pqxx::result rows = txn.exec_prepared(
      sql::kResolveSeries.name, common::PgTextArrayLiteral(columns[0]),
      common::PgTextArrayLiteral(columns[1]), common::PgTextArrayLiteral(columns[2]),
      common::PgTextArrayLiteral(columns[3]));
  const auto n = rows.column_number("n");
  const auto id = rows.column_number("id");
  for (const auto& row : rows) {
    const size_t i = missing[row[n].as<size_t>() - 1];
    ids[i] = row[id].as<int64_t>();
    cache.Learn(*chunk.keys[i], ids[i]);
  }
  return ids;
}

// Inserts the points (deduplicated, in key order) and returns those it inserted: all of them
// unless some were stored already.
std::vector<InsertedPoint> InsertPoints(pqxx::work& txn, std::vector<InsertedPoint> candidates) {
  // The common case is that every point is new: then a plain COPY straight into metric_points,
  // the bulk path PostgreSQL makes cheapest (multi-row heap inserts, no ON CONFLICT speculation,
  // no RETURNING set), and the rollups take all the candidates. If any point is already stored
  // (a resend, a replay), the COPY fails whole, its savepoint is rolled back, and the ON CONFLICT
  // form (sql/insert_points.sql) inserts the others and names them.
  try {
    pqxx::subtransaction attempt(txn, "xtrace_points");
    {
      static const std::vector<std::string> kColumns{"series_id", "ts", "value"};
      pqxx::stream_to copy(attempt, "metric_points", kColumns);
      std::unordered_map<int64_t, std::string> formatted;  // a chunk has few distinct timestamps
      std::string id, value;
      for (const auto& p : candidates) {
        auto [it, added] = formatted.try_emplace(p.ts_us);
        if (added) it->second = TimeText(p.ts_us);
        id = std::to_string(p.series_id);
        value = Decimal(p.value);
        copy << std::tie(id, it->second, value);
      }
      copy.complete();
    }
    attempt.commit();
    return candidates;
  } catch (const pqxx::unique_violation&) {
  }
  std::vector<std::string> series, times, values;
  for (const auto& p : candidates) {
    series.push_back(std::to_string(p.series_id));
    times.push_back(TimeText(p.ts_us));
    values.push_back(Decimal(p.value));
  }
  const pqxx::result rows =
      txn.exec_prepared(sql::kInsertPoints.name, common::PgTextArrayLiteral(series),
                        common::PgTextArrayLiteral(times), common::PgTextArrayLiteral(values));
  const auto series_id = rows.column_number("series_id");
  const auto ts_us = rows.column_number("ts_us");
  const auto value = rows.column_number("value");
  std::vector<InsertedPoint> inserted;
  inserted.reserve(candidates.size());
  for (const auto& row : rows) {
    inserted.push_back(
        {Parse<int64_t>(row[series_id]), Parse<int64_t>(row[ts_us]), Parse<double>(row[value])});
  }
  return inserted;
}

}  // namespace

const int64_t* SeriesCache::Find(const std::string& key) const {
  if (const auto it = pending_.find(key); it != pending_.end()) return &it->second;
  if (const auto it = committed_.find(key); it != committed_.end()) return &it->second;
  return nullptr;
}

void SeriesCache::Begin(int64_t epoch) {
  pending_.clear();
  if (epoch != epoch_) committed_.clear();
  epoch_ = epoch;
}

void SeriesCache::Commit() {
  if (committed_.size() + pending_.size() > kMaxEntries) committed_.clear();
  committed_.merge(pending_);
  pending_.clear();
}

MetricChunk PrepareMetricChunk(const std::vector<SequencedRecord>& records) {
  MetricChunk chunk;
  for (const auto& [seq, record] : records) {
    if (const auto* metrics = std::get_if<schema::MetricBatch>(&record->events)) {
      AddMetrics(chunk, *record, *metrics);
    }
  }
  return chunk;
}

void ApplyMetricChunk(pqxx::work& txn, MetricChunk& chunk, SeriesCache& cache,
                      RollupCache* rollups) {
  if (chunk.points.empty()) return;
  // A share lock on the epoch: xtrace-replay --rebuild bumps it (waiting for this transaction)
  // before it empties metric_series, so cached ids are never used across a rebuild.
  const int64_t epoch =
      txn.exec1("SELECT epoch FROM projection_epoch FOR SHARE")["epoch"].as<int64_t>();
  cache.Begin(epoch);
  const std::vector<int64_t> ids = ResolveSeries(txn, chunk, cache);
  // Key order helps the index; a stable sort keeps record order among equal keys, so the
  // first of them is the one kept.
  std::stable_sort(chunk.points.begin(), chunk.points.end(),
                   [&](const MetricChunk::Point& a, const MetricChunk::Point& b) {
                     return std::pair(ids[a.series], a.ts_us) < std::pair(ids[b.series], b.ts_us);
                   });
  std::vector<InsertedPoint> candidates;  // deduplicated, in key order
  candidates.reserve(chunk.points.size());
  for (size_t i = 0; i < chunk.points.size(); ++i) {
    const auto& p = chunk.points[i];
    if (i > 0 && ids[chunk.points[i - 1].series] == ids[p.series] &&
        chunk.points[i - 1].ts_us == p.ts_us) {
      continue;
    }
    candidates.push_back({ids[p.series], p.ts_us, p.value});
  }
  MergeIntoRollups(txn, InsertPoints(txn, std::move(candidates)), rollups, epoch);
}

}  // namespace xtrace::projector
