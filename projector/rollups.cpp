#include "projector/rollups.hpp"

#include <pqxx/result>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

#include "common/pg_text.hpp"
#include "common/sketch.hpp"
#include "projector/params.hpp"
#include "projector/sql.hpp"

namespace xtrace::projector {
namespace {

struct RollupCell {
  int64_t count = 0;
  double sum = 0, min = 0, max = 0, last = 0;
  int64_t last_us = INT64_MIN;
  common::Sketch sketch;

  void AddPoint(int64_t ts_us, double value, int32_t slot) {
    min = count == 0 ? value : std::min(min, value);
    max = count == 0 ? value : std::max(max, value);
    ++count;
    sum += value;
    if (ts_us > last_us) {
      last_us = ts_us;
      last = value;
    }
    sketch.AddSlot(slot, 1);
  }

  void Add(const RollupCell& o) {
    min = count == 0 ? o.min : std::min(min, o.min);
    max = count == 0 ? o.max : std::max(max, o.max);
    count += o.count;
    sum += o.sum;
    // The later point is the last; on a tie the one already stored stays.
    if (o.last_us > last_us) {
      last_us = o.last_us;
      last = o.last;
    }
    sketch.Merge(o.sketch);
  }
};

using RollupKey = std::tuple<int64_t, int32_t, int64_t>;  // series, step, bucket start in s

// The columns of sql/select_rollups.sql, found by name once per result.
struct StoredCellColumns {
  explicit StoredCellColumns(const pqxx::result& r)
      : series_id(r.column_number("series_id")),
        step(r.column_number("step")),
        bucket_s(r.column_number("bucket_s")),
        count(r.column_number("count")),
        sum(r.column_number("sum")),
        min(r.column_number("min")),
        max(r.column_number("max")),
        last(r.column_number("last")),
        last_us(r.column_number("last_us")),
        sketch(r.column_number("sketch")) {}
  pqxx::row::size_type series_id, step, bucket_s, count, sum, min, max, last, last_us, sketch;
};

}  // namespace

struct RollupCache::State {
  int64_t epoch = -1, version = -1;
  std::map<RollupKey, RollupCell> committed;  // as stored after our last committed merge
  int64_t pending_epoch = -1, pending_version = -1;
  std::map<RollupKey, RollupCell> pending;  // as written by the transaction in flight
};

RollupCache::RollupCache() : state_(std::make_unique<State>()) {}
RollupCache::~RollupCache() = default;

void RollupCache::Abandon() {
  state_->pending.clear();
  state_->pending_version = -1;
}

void RollupCache::Commit() {
  if (state_->pending_version < 0) return;  // the transaction merged nothing
  state_->committed = std::move(state_->pending);
  state_->pending.clear();
  state_->epoch = state_->pending_epoch;
  state_->version = state_->pending_version;
  state_->pending_version = -1;
}

void MergeIntoRollups(pqxx::work& txn, const std::vector<InsertedPoint>& points, RollupCache* cache,
                      int64_t epoch) {
  if (points.empty()) return;
  static constexpr int32_t kSteps[] = {60, 300, 3600, 86400};
  // (series, step, bucket start in s) -> aggregate of the new points.
  std::map<RollupKey, RollupCell> cells;
  for (const auto& p : points) {
    const int32_t slot = common::Sketch::SlotOf(p.value);
    const int64_t ts_s = p.ts_us >= 0 ? p.ts_us / 1000000 : (p.ts_us - 999999) / 1000000;
    for (const int32_t step : kSteps) {
      const int64_t bucket = (ts_s >= 0 ? ts_s / step : (ts_s - step + 1) / step) * step;
      cells[{p.series_id, step, bucket}].AddPoint(p.ts_us, p.value, slot);
    }
  }
  std::vector<std::string> series_ids, steps, buckets;
  series_ids.reserve(cells.size());
  steps.reserve(cells.size());
  buckets.reserve(cells.size());
  for (const auto& [k, cell] : cells) {
    series_ids.push_back(std::to_string(std::get<0>(k)));
    steps.push_back(std::to_string(std::get<1>(k)));
    buckets.push_back(std::to_string(std::get<2>(k)));
  }
  const auto series_array = common::PgTextArrayLiteral(series_ids);
  const auto step_array = common::PgTextArrayLiteral(steps);
  const auto bucket_array = common::PgTextArrayLiteral(buckets);
  txn.exec_params("SELECT pg_advisory_xact_lock($1)", kRollupLockKey);
  const int64_t version =
      txn.exec1("UPDATE rollup_version SET version = version + 1 RETURNING version")["version"]
          .as<int64_t>();
  // Stored cells come first in each merged one, so that their last value wins a tie.
  std::map<RollupKey, RollupCell> stored;
  std::vector<std::string> read_series, read_steps, read_buckets;  // cells not in the cache
  const std::map<RollupKey, RollupCell>* known = nullptr;
  if (cache != nullptr) {
    auto& st = cache->state();
    // Our own last merge was the last one (version) in this epoch: the cells are as we left them.
    if (st.epoch != epoch || st.version != version - 1) st.committed.clear();
    st.pending.clear();
    st.pending_epoch = epoch;
    st.pending_version = version;
    known = &st.committed;
  }
  size_t i = 0;
  for (const auto& [k, cell] : cells) {
    if (known != nullptr) {
      if (const auto it = known->find(k); it != known->end()) {
        stored.emplace(k, it->second);
        ++i;
        continue;
      }
    }
    read_series.push_back(std::move(series_ids[i]));
    read_steps.push_back(std::move(steps[i]));
    read_buckets.push_back(std::move(buckets[i]));
    ++i;
  }
  const pqxx::result rows =
      read_series.empty()
          ? pqxx::result()
          : txn.exec_prepared(sql::kSelectRollups.name, common::PgTextArrayLiteral(read_series),
                              common::PgTextArrayLiteral(read_steps),
                              common::PgTextArrayLiteral(read_buckets));
  if (!rows.empty()) {
    const StoredCellColumns c(rows);
    for (const auto& row : rows) {
      RollupCell cell;
      cell.count = Parse<int64_t>(row[c.count]);
      cell.sum = Parse<double>(row[c.sum]);
      cell.min = Parse<double>(row[c.min]);
      cell.max = Parse<double>(row[c.max]);
      cell.last = Parse<double>(row[c.last]);
      cell.last_us = Parse<int64_t>(row[c.last_us]);
      std::string bytes;
      if (!common::DecodeByteaHex(row[c.sketch].c_str(), bytes) ||
          !cell.sketch.MergeEncoded(bytes)) {
        throw std::runtime_error("metric_rollups holds a sketch this build cannot read (series " +
                                 std::string(row[c.series_id].c_str()) + ")");
      }
      stored.emplace(std::tuple{Parse<int64_t>(row[c.series_id]), Parse<int32_t>(row[c.step]),
                                Parse<int64_t>(row[c.bucket_s])},
                     std::move(cell));
    }
  }
  std::vector<std::string> counts, sums, mins, maxs, lasts, last_us, sketches;
  for (auto& [k, fresh] : cells) {
    RollupCell* cell = &fresh;
    if (const auto it = stored.find(k); it != stored.end()) {
      it->second.Add(fresh);
      cell = &it->second;
    }
    counts.push_back(std::to_string(cell->count));
    sums.push_back(Decimal(cell->sum));
    mins.push_back(Decimal(cell->min));
    maxs.push_back(Decimal(cell->max));
    lasts.push_back(Decimal(cell->last));
    last_us.push_back(TimeText(cell->last_us));
    sketches.push_back(common::EncodeByteaHex(cell->sketch.Encode()));
    // Rendered: the cell moves to the cache instead of being copied there.
    if (cache != nullptr) cache->state().pending.emplace(k, std::move(*cell));
  }
  txn.exec_prepared(sql::kUpsertRollups.name, series_array, step_array, bucket_array,
                    common::PgTextArrayLiteral(counts), common::PgTextArrayLiteral(sums),
                    common::PgTextArrayLiteral(mins), common::PgTextArrayLiteral(maxs),
                    common::PgTextArrayLiteral(lasts), common::PgTextArrayLiteral(last_us),
                    common::PgTextArrayLiteral(sketches));
}

uint64_t RebuildRollups(pqxx::work& txn) {
  // The rollup lock before the table lock, in the order MergeIntoRollups takes them, so that a
  // projector merging at the same time waits instead of deadlocking.
  txn.exec_params("SELECT pg_advisory_xact_lock($1)", kRollupLockKey);
  txn.exec0("TRUNCATE metric_rollups");
  // Whatever a projector remembers of the rollups is void now.
  txn.exec0("UPDATE rollup_version SET version = version + 1");
  // Pages in key order, so that memory stays bounded whatever the table's size.
  constexpr int kPage = 100000;
  uint64_t total = 0;
  int64_t after_series = INT64_MIN, after_us = 0;  // before every real key
  for (;;) {
    std::vector<InsertedPoint> page;
    page.reserve(kPage);
    const pqxx::result rows = txn.exec_params(
        "SELECT series_id, (EXTRACT(EPOCH FROM ts) * 1000000)::int8 AS us, value "
        "FROM metric_points WHERE (series_id, ts) > ($1, $2::timestamptz) "
        "ORDER BY series_id, ts LIMIT $3",
        after_series, TimeText(after_us), kPage);
    const auto series_id = rows.column_number("series_id");
    const auto us = rows.column_number("us");
    const auto value = rows.column_number("value");
    for (const auto& row : rows) {
      page.push_back(
          {Parse<int64_t>(row[series_id]), Parse<int64_t>(row[us]), Parse<double>(row[value])});
    }
    if (page.empty()) break;
    after_series = page.back().series_id;
    after_us = page.back().ts_us;
    MergeIntoRollups(txn, page);
    total += page.size();
  }
  return total;
}

uint64_t RebuildRollupsIfMissing(pqxx::connection& conn) {
  pqxx::work txn(conn);
  const auto missing = txn.exec1(
      "SELECT EXISTS (SELECT 1 FROM metric_points) AND NOT EXISTS (SELECT 1 FROM metric_rollups) "
      "AS missing");
  if (!missing["missing"].as<bool>()) return 0;
  // One transaction, so that a crash leaves no half-built rollups (the next start begins again).
  const uint64_t total = RebuildRollups(txn);
  txn.commit();
  return total;
}

}  // namespace xtrace::projector
