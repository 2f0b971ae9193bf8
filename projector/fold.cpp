#include "projector/fold.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/except>
#include <pqxx/prepared_statement>
#include <pqxx/result>
#include <pqxx/stream_to>
#include <pqxx/subtransaction>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/pg_text.hpp"
#include "common/sketch.hpp"
#include "common/time.hpp"
#include "projector/sanitize.hpp"

namespace xtrace::projector {
namespace {

using Param = std::optional<std::string>;
using schema::OptString;

Param Text(const OptString& s) {
  if (!s) return std::nullopt;
  return SanitizeText(*s);
}
Param Json(const OptString& s) {
  if (!s) return std::nullopt;
  return SanitizeJson(*s);
}
std::string Text(const std::string& s) {
  return SanitizeText(s);
}
Param Time(const schema::Field<common::TimePoint>& t) {
  if (!t) return std::nullopt;
  return common::FormatRfc3339(*t);
}
template <class Number>
Param Num(const schema::Field<Number>& n) {
  if (!n) return std::nullopt;
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *n);
  return std::string(buf, end);
}
Param Bool(const schema::Field<bool>& b) {
  if (!b) return std::nullopt;
  return *b ? "true" : "false";
}

// Series ids of identities the cache does not know: created on first sight, else read. The
// final SELECT's snapshot predates the INSERT, so existing series come from metric_series and
// new ones from `created`.
constexpr char kResolveSeries[] = R"sql(
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY
    AS u(project_id, environment, name, labels, n)),
created AS (
  INSERT INTO metric_series (project_id, environment, name, labels)
  SELECT DISTINCT project_id, environment, name, labels FROM input
  ON CONFLICT (project_id, environment, name, labels) DO NOTHING
  RETURNING id, project_id, environment, name, labels)
SELECT i.n, COALESCE(c.id, s.id)
FROM input i
LEFT JOIN created c ON (c.project_id, c.environment, c.name, c.labels)
                     = (i.project_id, i.environment, i.name, i.labels)
LEFT JOIN metric_series s ON (s.project_id, s.environment, s.name, s.labels)
                           = (i.project_id, i.environment, i.name, i.labels)
)sql";

// Points in bulk, deduplicated and sorted by key in C++ (the first of equal keys in record
// order wins); ON CONFLICT DO NOTHING makes a resent point, or a replayed record, a no-op, and
// RETURNING yields only the points this statement inserted: a resend never counts twice in the
// rollups.
constexpr char kInsertPoints[] = R"sql(
INSERT INTO metric_points (series_id, ts, value)
SELECT u.series_id, u.ts, u.value
FROM unnest($1::int8[], $2::timestamptz[], $3::float8[]) AS u(series_id, ts, value)
ON CONFLICT (series_id, ts) DO NOTHING
RETURNING series_id, (EXTRACT(EPOCH FROM ts) * 1000000)::int8, value
)sql";

// Labels as a JSON object in key order; a repeated key keeps its last value, as jsonb does.
std::string LabelsJson(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::map<std::string_view, std::string_view> sorted;
  for (const auto& [k, v] : labels) sorted[k] = v;
  boost::json::object o;
  for (const auto& [k, v] : sorted) o[k] = v;
  return boost::json::serialize(o);
}

constexpr char kSelectRollups[] = R"sql(
SELECT r.series_id, r.step, k.bucket_s, r.count, r.sum, r.min, r.max, r.last,
       (EXTRACT(EPOCH FROM r.last_ts) * 1000000)::int8, r.sketch
FROM unnest($1::int8[], $2::int4[], $3::int8[]) AS k(series_id, step, bucket_s)
JOIN metric_rollups r ON r.series_id = k.series_id AND r.step = k.step
  AND r.bucket = 'epoch'::timestamptz + k.bucket_s * interval '1 second'
)sql";

constexpr char kUpsertRollups[] = R"sql(
INSERT INTO metric_rollups AS r (series_id, step, bucket, count, sum, min, max, last, last_ts,
                                 sketch)
SELECT u.series_id, u.step, 'epoch'::timestamptz + u.bucket_s * interval '1 second', u.count,
       u.sum, u.min, u.max, u.last, u.last_ts, u.sketch
FROM unnest($1::int8[], $2::int4[], $3::int8[], $4::int8[], $5::float8[], $6::float8[],
            $7::float8[], $8::float8[], $9::timestamptz[], $10::bytea[])
     AS u(series_id, step, bucket_s, count, sum, min, max, last, last_ts, sketch)
ON CONFLICT (series_id, step, bucket) DO UPDATE SET
  count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
  last = EXCLUDED.last, last_ts = EXCLUDED.last_ts, sketch = EXCLUDED.sketch
)sql";

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

template <class Number>
Number Parse(const pqxx::field& f) {
  return common::ParsePgNumber<Number>(std::string_view(f.c_str(), f.size()));
}

// A point in time as timestamptz text. Integer microseconds times an interval would go through
// float8 in PostgreSQL and lose the last microsecond beyond year 2255 (ingest accepts 0001-9999).
std::string TimeText(int64_t us) {
  return common::FormatRfc3339(common::TimePoint(common::Micros(us)));
}

std::string Decimal(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

struct PendingPoint {
  size_t series;  // index into ChunkMetrics::keys
  int64_t ts_us;
  double value;
};

// The metric points of a chunk in record order, with their series identities.
struct ChunkMetrics {
  std::unordered_map<std::string, size_t> index;       // cache key -> position in keys
  std::vector<const std::string*> keys;                // the keys of index, by position
  std::vector<std::array<std::string, 4>> identities;  // project, environment, name, labels
  std::vector<PendingPoint> points;
};

// A series' cache key: its identity as sent, each part length-prefixed (parts may hold any
// byte). Labels in another order make another key for the same series, which only costs a
// second cache entry; the identity stored is canonical.
void AppendKeyPart(std::string& key, std::string_view part) {
  const auto n = static_cast<uint32_t>(part.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(part);
}

void AddMetrics(ChunkMetrics& chunk, const schema::WalRecord& rec, const schema::MetricBatch& m) {
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

void FoldMetrics(pqxx::work& txn, ChunkMetrics& chunk, SeriesCache& cache, RollupCache* rollups) {
  if (chunk.points.empty()) return;
  // A share lock on the epoch: xtrace-replay --rebuild bumps it (waiting for this transaction)
  // before it empties metric_series, so cached ids are never used across a rebuild.
  const int64_t epoch = txn.exec1("SELECT epoch FROM projection_epoch FOR SHARE")[0].as<int64_t>();
  cache.Begin(epoch);
  std::vector<int64_t> ids(chunk.keys.size(), 0);
  std::vector<size_t> missing;
  for (size_t i = 0; i < chunk.keys.size(); ++i) {
    if (const int64_t* id = cache.Find(*chunk.keys[i])) {
      ids[i] = *id;
    } else {
      missing.push_back(i);
    }
  }
  if (!missing.empty()) {
    std::array<std::vector<std::string>, 4> columns;
    for (const size_t i : missing) {
      for (size_t c = 0; c < 4; ++c) columns[c].push_back(chunk.identities[i][c]);
    }
    for (const auto& row : txn.exec_prepared(
             "xtrace_resolve_series", common::PgTextArrayLiteral(columns[0]),
             common::PgTextArrayLiteral(columns[1]), common::PgTextArrayLiteral(columns[2]),
             common::PgTextArrayLiteral(columns[3]))) {
      const size_t i = missing[row[0].as<size_t>() - 1];
      ids[i] = row[1].as<int64_t>();
      cache.Learn(*chunk.keys[i], ids[i]);
    }
  }
  // Key order helps the index; a stable sort keeps record order among equal keys, so the
  // first of them is the one kept.
  std::stable_sort(chunk.points.begin(), chunk.points.end(),
                   [&](const PendingPoint& a, const PendingPoint& b) {
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
  // The common case is that every point is new: then a plain COPY straight into metric_points,
  // the bulk path PostgreSQL makes cheapest (multi-row heap inserts, no ON CONFLICT speculation,
  // no RETURNING set), and the rollups take all the candidates. If any point is already stored
  // (a resend, a replay), the COPY fails whole, its savepoint is rolled back, and the ON CONFLICT
  // form below inserts the others and names them.
  bool all_new = false;
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
    all_new = true;
  } catch (const pqxx::unique_violation&) {
  }
  std::vector<InsertedPoint> inserted;
  if (all_new) {
    inserted = std::move(candidates);
  } else {
    std::vector<std::string> series, times, values;
    for (const auto& p : candidates) {
      series.push_back(std::to_string(p.series_id));
      times.push_back(TimeText(p.ts_us));
      values.push_back(Decimal(p.value));
    }
    inserted.reserve(candidates.size());
    for (const auto& row :
         txn.exec_prepared("xtrace_insert_points", common::PgTextArrayLiteral(series),
                           common::PgTextArrayLiteral(times), common::PgTextArrayLiteral(values))) {
      inserted.push_back({Parse<int64_t>(row[0]), Parse<int64_t>(row[1]), Parse<double>(row[2])});
    }
  }
  MergeIntoRollups(txn, inserted, rollups, epoch);
}

// ---- traces and observations: set-based, in waves -------------------------------------------
//
// A chunk's events are applied with a handful of statements over parallel arrays (unnest), not
// one statement per row. An entity may occur several times in a chunk (create, then updates);
// its k-th occurrence goes to wave k, so within a wave every entity appears once and waves run
// in order: the result is that of applying the records one by one.
//
// Each wave, in one statement per kind: INSERT the entities that are new (ON CONFLICT DO
// NOTHING) and UPDATE the existing ones with the merge rules. Every row records the WAL id and
// the position of the last event applied to it (src_wal, src_seq = sequence << 20 | the event's
// index in its record); an UPDATE from an event at or below that position of the same WAL is
// skipped, which makes re-applying any record, or replaying any range, a no-op.

constexpr char kTraceInput[] = R"sql(
unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::jsonb[],
       $14::jsonb[], $15::jsonb[], $16::boolean[], $17::boolean[], $18::float8[], $19::float8[],
       $20::uuid[], $21::bigint[])
  AS u(project_id, id, ts, received, environment, name, user_id, session_id, release, version,
       external_id, input, output, metadata, tags, public, bookmarked, latency, total_cost,
       src_wal, src_seq))sql";
constexpr int kTraceColumns = 21;

constexpr char kInsertTraces[] = R"sql(
INSERT INTO traces (project_id, id, "timestamp", placeholder, environment, name, user_id,
  session_id, release, version, external_id, input, output, metadata, tags, public, bookmarked,
  latency, total_cost, src_wal, src_seq, obs_latency, obs_total_cost)
SELECT u.project_id, u.id, COALESCE(u.ts, u.received), FALSE, u.environment, u.name, u.user_id,
  u.session_id, u.release, u.version, u.external_id, u.input, u.output, u.metadata,
  (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM jsonb_array_elements_text(u.tags) AS x),
  COALESCE(u.public, FALSE), COALESCE(u.bookmarked, FALSE), u.latency, u.total_cost,
  u.src_wal, u.src_seq, a.latency, a.total_cost
FROM )sql";
// A new trace is written with the aggregates of the observations already stored for it (the
// wave's observations go in first), as kRefreshDerived computes them: the refresh then finds
// them current and leaves the freshly written row alone instead of writing it a second time.
// The same expressions in both statements: if they differed, the refresh would find every new
// trace changed and rewrite it.
#define XTRACE_OBSERVATION_AGGREGATES                                              \
  "EXTRACT(EPOCH FROM (max(o.end_time) - min(o.start_time)))::float8 AS latency, " \
  "sum(o.calculated_total_cost) AS total_cost"
constexpr char kInsertTracesSource[] = R"sql(u
LEFT JOIN LATERAL (
  SELECT )sql" XTRACE_OBSERVATION_AGGREGATES R"sql(
  FROM observations o WHERE o.project_id = u.project_id AND o.trace_id = u.id) AS a ON TRUE)sql";

constexpr char kUpdateTraces[] = R"sql(
UPDATE traces AS t SET
  "timestamp"  = CASE WHEN t.placeholder THEN COALESCE(u.ts, u.received) ELSE t."timestamp" END,
  environment  = CASE WHEN t.placeholder THEN u.environment ELSE t.environment END,
  placeholder  = FALSE,
  name         = COALESCE(u.name, t.name),
  user_id      = COALESCE(u.user_id, t.user_id),
  session_id   = COALESCE(u.session_id, t.session_id),
  release      = COALESCE(u.release, t.release),
  version      = COALESCE(u.version, t.version),
  external_id  = COALESCE(u.external_id, t.external_id),
  input        = COALESCE(u.input, t.input),
  output       = COALESCE(u.output, t.output),
  metadata     = xtrace_jsonb_merge(t.metadata, u.metadata),
  tags         = CASE WHEN u.tags IS NULL THEN t.tags ELSE
                   (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}')
                    FROM (SELECT unnest(t.tags) UNION ALL
                          SELECT jsonb_array_elements_text(u.tags)) AS s(x)) END,
  public       = COALESCE(u.public, t.public),
  bookmarked   = COALESCE(u.bookmarked, t.bookmarked),
  latency      = COALESCE(u.latency, t.latency),
  total_cost   = COALESCE(u.total_cost, t.total_cost),
  src_wal      = u.src_wal,
  src_seq      = u.src_seq,
  updated_at   = now()
FROM )sql";
constexpr char kUpdateTracesWhere[] = R"sql(
WHERE t.project_id = u.project_id AND t.id = u.id
  AND (t.src_wal IS DISTINCT FROM u.src_wal OR t.src_seq IS NULL OR t.src_seq < u.src_seq)
)sql";

// A placeholder for a trace that observations name before the trace itself arrives; the real
// trace replaces its timestamp and environment. The first observation in record order decides.
constexpr char kInsertPlaceholders[] = R"sql(
INSERT INTO traces (project_id, id, "timestamp", placeholder, environment)
SELECT DISTINCT ON (project_id, id) project_id, id, ts, TRUE, environment
FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[]) WITH ORDINALITY
     AS u(project_id, id, ts, environment, n)
ORDER BY project_id, id, n
ON CONFLICT (project_id, id) DO NOTHING
)sql";

constexpr char kObservationInput[] = R"sql(
unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
       $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::jsonb[],
       $12::jsonb[], $13::jsonb[], $14::jsonb[], $15::jsonb[], $16::text[], $17::text[],
       $18::uuid[], $19::text[], $20::text[], $21::text[], $22::text[], $23::float8[],
       $24::float8[], $25::float8[], $26::float8[], $27::float8[], $28::float8[], $29::float8[],
       $30::float8[], $31::bigint[], $32::bigint[], $33::bigint[], $34::text[], $35::uuid[],
       $36::bigint[])
  AS u(project_id, id, trace_id, type, environment, name, start_time, end_time,
       completion_start_time, model, model_parameters, input, output, usage, metadata, level,
       status_message, parent_observation_id, prompt_id, prompt_name, prompt_version, model_id,
       input_price, output_price, total_price, calculated_input_cost, calculated_output_cost,
       calculated_total_cost, latency, time_to_first_token, completion_tokens, prompt_tokens,
       total_tokens, unit, src_wal, src_seq))sql";
constexpr int kObservationColumns = 36;

constexpr char kInsertObservations[] = R"sql(
INSERT INTO observations (project_id, id, trace_id, type, environment, name, start_time,
  end_time, completion_start_time, model, model_parameters, input, output, usage, metadata, level,
  status_message, parent_observation_id, prompt_id, prompt_name, prompt_version, model_id,
  input_price, output_price, total_price, calculated_input_cost, calculated_output_cost,
  calculated_total_cost, latency, time_to_first_token, completion_tokens, prompt_tokens,
  total_tokens, unit, src_wal, src_seq)
SELECT u.project_id, u.id, u.trace_id, COALESCE(u.type, 'GENERATION'), u.environment, u.name,
  u.start_time, u.end_time, u.completion_start_time, u.model, u.model_parameters, u.input,
  u.output, u.usage, u.metadata, u.level, u.status_message, u.parent_observation_id, u.prompt_id,
  u.prompt_name, u.prompt_version, u.model_id, u.input_price, u.output_price, u.total_price,
  u.calculated_input_cost, u.calculated_output_cost, u.calculated_total_cost, u.latency,
  u.time_to_first_token, u.completion_tokens, u.prompt_tokens, u.total_tokens, u.unit,
  u.src_wal, u.src_seq
FROM )sql";

constexpr char kUpdateObservations[] = R"sql(
UPDATE observations AS o SET
  type                   = COALESCE(u.type, o.type),
  name                   = COALESCE(u.name, o.name),
  start_time             = COALESCE(o.start_time, u.start_time),
  end_time               = COALESCE(u.end_time, o.end_time),
  completion_start_time  = COALESCE(u.completion_start_time, o.completion_start_time),
  model                  = COALESCE(u.model, o.model),
  model_parameters       = COALESCE(u.model_parameters, o.model_parameters),
  input                  = COALESCE(u.input, o.input),
  output                 = COALESCE(u.output, o.output),
  usage                  = COALESCE(u.usage, o.usage),
  metadata               = xtrace_jsonb_merge(o.metadata, u.metadata),
  level                  = COALESCE(u.level, o.level),
  status_message         = COALESCE(u.status_message, o.status_message),
  parent_observation_id  = COALESCE(u.parent_observation_id, o.parent_observation_id),
  prompt_id              = COALESCE(u.prompt_id, o.prompt_id),
  prompt_name            = COALESCE(u.prompt_name, o.prompt_name),
  prompt_version         = COALESCE(u.prompt_version, o.prompt_version),
  model_id               = COALESCE(u.model_id, o.model_id),
  input_price            = COALESCE(u.input_price, o.input_price),
  output_price           = COALESCE(u.output_price, o.output_price),
  total_price            = COALESCE(u.total_price, o.total_price),
  calculated_input_cost  = COALESCE(u.calculated_input_cost, o.calculated_input_cost),
  calculated_output_cost = COALESCE(u.calculated_output_cost, o.calculated_output_cost),
  calculated_total_cost  = COALESCE(u.calculated_total_cost, o.calculated_total_cost),
  latency                = COALESCE(u.latency, o.latency),
  time_to_first_token    = COALESCE(u.time_to_first_token, o.time_to_first_token),
  completion_tokens      = COALESCE(u.completion_tokens, o.completion_tokens),
  prompt_tokens          = COALESCE(u.prompt_tokens, o.prompt_tokens),
  total_tokens           = COALESCE(u.total_tokens, o.total_tokens),
  unit                   = COALESCE(u.unit, o.unit),
  src_wal                = u.src_wal,
  src_seq                = u.src_seq,
  updated_at             = now()
FROM )sql";
constexpr char kUpdateObservationsWhere[] = R"sql(
WHERE o.project_id = u.project_id AND o.id = u.id
  AND (o.src_wal IS DISTINCT FROM u.src_wal OR o.src_seq IS NULL OR o.src_seq < u.src_seq)
)sql";

// Parallel column arrays for one statement, rendered as PostgreSQL array literals (NULL for an
// absent value).
class Columns {
 public:
  explicit Columns(int n) : columns_(static_cast<size_t>(n)) {}
  void AddRow(std::vector<Param> row) {
    for (size_t i = 0; i < columns_.size(); ++i) columns_[i].push_back(std::move(row[i]));
  }
  bool empty() const { return columns_.front().empty(); }
  std::vector<std::string> Literals() const {
    std::vector<std::string> out;
    out.reserve(columns_.size());
    for (const auto& column : columns_) out.push_back(common::PgArrayLiteral(column));
    return out;
  }

 private:
  std::vector<std::vector<Param>> columns_;
};

// The tags array as a JSON array text (one jsonb element per row: rows' arrays differ in length).
Param TagsJson(const schema::Field<std::vector<std::string>>& tags) {
  if (!tags) return std::nullopt;
  boost::json::array a;
  for (const auto& t : *tags) a.emplace_back(boost::json::string(SanitizeText(t)));
  return boost::json::serialize(a);
}

struct Wave {
  Columns traces{kTraceColumns};
  Columns observations{kObservationColumns};
};

void AddTrace(Wave& w, const schema::WalRecord& rec, const schema::TraceEvent& t,
              const std::string& wal, uint64_t seq, std::set<TraceKey>& touched) {
  touched.insert({Text(t.project_id.value_or(rec.project_id)), t.id});
  w.traces.AddRow({Text(t.project_id.value_or(rec.project_id)),
                   t.id,
                   Time(t.timestamp),
                   Time(rec.received_at),
                   Text(t.environment.value_or(rec.environment)),
                   Text(t.name),
                   Text(t.user_id),
                   Text(t.session_id),
                   Text(t.release),
                   Text(t.version),
                   Text(t.external_id),
                   Json(t.input_json),
                   Json(t.output_json),
                   Json(t.metadata_json),
                   TagsJson(t.tags),
                   Bool(t.is_public),
                   Bool(t.bookmarked),
                   Num(t.latency),
                   Num(t.total_cost),
                   wal,
                   std::to_string(seq)});
}

void AddObservation(Wave& w, Columns& placeholders, const std::set<TraceKey>& chunk_traces,
                    const schema::WalRecord& rec, const schema::ObservationEvent& o,
                    const std::string& wal, uint64_t seq, std::set<TraceKey>& touched) {
  const std::string project = Text(o.project_id.value_or(rec.project_id));
  const std::string environment = Text(o.environment.value_or(rec.environment));
  const std::string& trace_id = o.trace_id;
  const auto [key, added] = touched.insert({project, trace_id});
  // A trace with an event of its own in this chunk needs no placeholder: the event creates the
  // row as a placeholder replaced by it would end up, so the row is written once.
  if (!chunk_traces.contains(*key)) {
    placeholders.AddRow(
        {project, trace_id, Time(o.start_time ? o.start_time : rec.received_at), environment});
  }
  w.observations.AddRow({project,
                         o.id,
                         trace_id,
                         Text(o.type),
                         environment,
                         Text(o.name),
                         Time(o.start_time),
                         Time(o.end_time),
                         Time(o.completion_start_time),
                         Text(o.model),
                         Json(o.model_parameters_json),
                         Json(o.input_json),
                         Json(o.output_json),
                         Json(o.usage_json),
                         Json(o.metadata_json),
                         Text(o.level),
                         Text(o.status_message),
                         Text(o.parent_observation_id),
                         Text(o.prompt_id),
                         Text(o.prompt_name),
                         Text(o.prompt_version),
                         Text(o.model_id),
                         Num(o.input_price),
                         Num(o.output_price),
                         Num(o.total_price),
                         Num(o.calculated_input_cost),
                         Num(o.calculated_output_cost),
                         Num(o.calculated_total_cost),
                         Num(o.latency),
                         Num(o.time_to_first_token),
                         Num(o.completion_tokens),
                         Num(o.prompt_tokens),
                         Num(o.total_tokens),
                         Text(o.unit),
                         wal,
                         std::to_string(seq)});
}

// src_seq of an event: the WAL sequence in the high bits, the event's position within its record
// in the low 20. Records hold far fewer than 2^20 events (the body limit sees to that); a
// position beyond is clamped, which only loses the ordering among those excess events.
uint64_t EventPosition(uint64_t seq, size_t index) {
  constexpr uint64_t kMaxIndex = (uint64_t{1} << 20) - 1;
  return (seq << 20) | std::min<uint64_t>(index, kMaxIndex);
}

// Runs a statement over prepared array literals; none (no rows) runs nothing.
void Exec(pqxx::work& txn, const char* statement, const std::vector<std::string>& literals) {
  if (literals.empty()) return;
  txn.exec_prepared(statement, pqxx::prepare::make_dynamic_params(literals));
}

void ApplyWave(pqxx::work& txn, const std::vector<std::string>& traces,
               const std::vector<std::string>& observations, std::set<TraceKey>& touched) {
  // Observations first, so that the traces the wave creates are written with their aggregates
  // (the two statements touch different tables: their order changes nothing else).
  if (!observations.empty()) {
    // An observation keeps the trace it was first recorded under, even when a later event names
    // another: the UPDATE returns the stored trace of every row it changed, whose aggregates
    // change too.
    for (const auto& row : txn.exec_prepared("xtrace_upsert_observations",
                                             pqxx::prepare::make_dynamic_params(observations))) {
      touched.insert({row[0].c_str(), row[1].c_str()});
    }
  }
  Exec(txn, "xtrace_upsert_traces", traces);
}

// A trace's dimensions in the daily usage rollups, the same in daily_traces and daily_models so
// that every filter selects the same traces in both.
#define XTRACE_TRACE_DIMS                                                                     \
  "jsonb_build_object('name', t.name, 'userId', t.user_id, 'version', t.version, 'release', " \
  "t.release, 'tags', to_jsonb(t.tags))"

// One statement recomputes everything derived from the touched traces and their observations:
// - the trace aggregates (latency over the observations, their total cost);
// - the per-trace and per-(trace, model) usage rows, whose difference to the old rows is added to
//   the daily sums (and to each day's total row, dims '{}', which unfiltered queries read).
// All parts see the statement's snapshot, so the fresh rows take the new observation cost from
// the aggregate computed here, not from the traces row the same statement updates.
constexpr char kRefreshDerived[] = R"sql(
WITH k AS (SELECT * FROM unnest($1::text[], $2::uuid[]) AS k(project_id, trace_id)),
t AS MATERIALIZED (
  SELECT t.project_id, t.id, t.environment, t."timestamp", t.name, t.user_id, t.version,
         t.release, t.tags, t.total_cost, a.latency, a.n > 0 AS has_observations,
         CASE WHEN a.n = 0 THEN t.obs_total_cost ELSE a.total_cost END AS obs_total_cost,
         a.n AS count_observations
  FROM k JOIN traces t ON t.project_id = k.project_id AND t.id = k.trace_id
  -- Per trace through the index, whatever the planner guesses of the chunk's size: a join
  -- against an aggregate of all the chunk's observations was planned as a nested loop over it.
  CROSS JOIN LATERAL (
    SELECT )sql" XTRACE_OBSERVATION_AGGREGATES R"sql(, count(*) AS n
    FROM observations o WHERE o.project_id = t.project_id AND o.trace_id = t.id) AS a),
aggregates AS (
  UPDATE traces s SET obs_latency = t.latency, obs_total_cost = t.obs_total_cost
  FROM t
  WHERE t.has_observations AND s.project_id = t.project_id AND s.id = t.id
    AND (s.obs_latency IS DISTINCT FROM t.latency
         OR s.obs_total_cost IS DISTINCT FROM t.obs_total_cost)),
old_traces AS (
  DELETE FROM trace_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.*),
fresh_traces AS (
  SELECT t.project_id, t.id AS trace_id, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         )sql" XTRACE_TRACE_DIMS R"sql( AS dims,
         t.count_observations, COALESCE(t.total_cost, t.obs_total_cost, 0) AS total_cost
  FROM t),
inserted_traces AS (INSERT INTO trace_usage SELECT * FROM fresh_traces),
delta_traces AS (
  SELECT project_id, environment, day, COALESCE(dims, '{}') AS dims, sum(n) AS n,
         sum(count_observations) AS obs, sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, 1 AS n, count_observations, total_cost
        FROM fresh_traces
        UNION ALL
        SELECT project_id, environment, day, dims, -1, -count_observations, -total_cost
        FROM old_traces) AS d
  GROUP BY GROUPING SETS ((project_id, environment, day, dims), (project_id, environment, day))),
daily_traces_upsert AS (
  INSERT INTO daily_traces AS r (project_id, environment, day, dims, count_traces,
                                 count_observations, total_cost)
  SELECT project_id, environment, day, dims, n, obs, cost FROM delta_traces
  ON CONFLICT (project_id, environment, day, dims) DO UPDATE SET
    count_traces       = r.count_traces + EXCLUDED.count_traces,
    count_observations = r.count_observations + EXCLUDED.count_observations,
    total_cost         = r.total_cost + EXCLUDED.total_cost
  RETURNING r.project_id, r.environment, r.day, r.dims, r.count_traces),
old_models AS (
  DELETE FROM trace_model_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.*),
fresh_models AS (
  SELECT t.project_id, t.id AS trace_id, m.model, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         )sql" XTRACE_TRACE_DIMS R"sql( AS dims,
         m.count_observations, m.input_usage, m.output_usage, m.total_usage, m.total_cost
  FROM t CROSS JOIN LATERAL (
    SELECT COALESCE(o.model, 'unknown') AS model, count(*) AS count_observations,
           COALESCE(sum(o.input_tokens_d), 0) AS input_usage,
           COALESCE(sum(o.output_tokens_d), 0) AS output_usage,
           COALESCE(sum(o.total_tokens_d), 0) AS total_usage,
           COALESCE(sum(o.calculated_total_cost), 0) AS total_cost
    FROM observations o
    WHERE o.project_id = t.project_id AND o.trace_id = t.id AND o.type = 'GENERATION'
    GROUP BY 1) AS m),
inserted_models AS (INSERT INTO trace_model_usage SELECT * FROM fresh_models),
delta_models AS (
  SELECT project_id, environment, day, COALESCE(dims, '{}') AS dims, model, sum(n) AS n,
         sum(count_observations) AS obs,
         sum(input_usage) AS input, sum(output_usage) AS output, sum(total_usage) AS total,
         sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, model, 1 AS n, count_observations,
               input_usage, output_usage, total_usage, total_cost FROM fresh_models
        UNION ALL
        SELECT project_id, environment, day, dims, model, -1, -count_observations,
               -input_usage, -output_usage, -total_usage, -total_cost FROM old_models) AS d
  GROUP BY GROUPING SETS ((project_id, environment, day, dims, model),
                          (project_id, environment, day, model))),
daily_models_upsert AS (
  INSERT INTO daily_models AS r (project_id, environment, day, dims, model, count_traces,
                                 count_observations, input_usage, output_usage, total_usage,
                                 total_cost)
  SELECT project_id, environment, day, dims, model, n, obs, input, output, total, cost
  FROM delta_models
  ON CONFLICT (project_id, environment, day, dims, model) DO UPDATE SET
    count_traces       = r.count_traces + EXCLUDED.count_traces,
    count_observations = r.count_observations + EXCLUDED.count_observations,
    input_usage        = r.input_usage + EXCLUDED.input_usage,
    output_usage       = r.output_usage + EXCLUDED.output_usage,
    total_usage        = r.total_usage + EXCLUDED.total_usage,
    total_cost         = r.total_cost + EXCLUDED.total_cost
  RETURNING r.project_id, r.environment, r.day, r.dims, r.model, r.count_traces)
-- The cells no trace is in any more (a trace moved to other dimensions or another day): a
-- statement cannot delete rows it updates, so the caller deletes these (kDropEmptyDaily).
SELECT 'traces' AS rollup, project_id, environment, day::text, dims::text, NULL AS model
FROM daily_traces_upsert WHERE count_traces = 0
UNION ALL
SELECT 'models', project_id, environment, day::text, dims::text, model
FROM daily_models_upsert WHERE count_traces = 0
)sql";

// Removes the daily cells kRefreshDerived left without traces, so that the rollups hold exactly
// the rows a rebuild from the base tables gives (where no row exists for an empty cell). Still
// empty is checked again: a concurrent writer may have filled the cell since.
constexpr char kDropEmptyDailyTraces[] = R"sql(
DELETE FROM daily_traces d
USING unnest($1::text[], $2::text[], $3::date[], $4::jsonb[]) AS z(project_id, environment, day,
                                                                  dims)
WHERE d.project_id = z.project_id AND d.environment = z.environment AND d.day = z.day
  AND d.dims = z.dims AND d.count_traces = 0
)sql";
constexpr char kDropEmptyDailyModels[] = R"sql(
DELETE FROM daily_models d
USING unnest($1::text[], $2::text[], $3::date[], $4::jsonb[], $5::text[])
      AS z(project_id, environment, day, dims, model)
WHERE d.project_id = z.project_id AND d.environment = z.environment AND d.day = z.day
  AND d.dims = z.dims AND d.model = z.model AND d.count_traces = 0
)sql";
#undef XTRACE_TRACE_DIMS
#undef XTRACE_OBSERVATION_AGGREGATES

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
      txn.exec1("UPDATE rollup_version SET version = version + 1 RETURNING version")[0]
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
          : txn.exec_prepared("xtrace_select_rollups", common::PgTextArrayLiteral(read_series),
                              common::PgTextArrayLiteral(read_steps),
                              common::PgTextArrayLiteral(read_buckets));
  for (const auto& row : rows) {
    RollupCell cell;
    cell.count = Parse<int64_t>(row[3]);
    cell.sum = Parse<double>(row[4]);
    cell.min = Parse<double>(row[5]);
    cell.max = Parse<double>(row[6]);
    cell.last = Parse<double>(row[7]);
    cell.last_us = Parse<int64_t>(row[8]);
    std::string bytes;
    if (!common::DecodeByteaHex(row[9].c_str(), bytes) || !cell.sketch.MergeEncoded(bytes)) {
      throw std::runtime_error("metric_rollups holds a sketch this build cannot read (series " +
                               std::string(row[0].c_str()) + ")");
    }
    stored.emplace(
        std::tuple{Parse<int64_t>(row[0]), Parse<int32_t>(row[1]), Parse<int64_t>(row[2])},
        std::move(cell));
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
  txn.exec_prepared("xtrace_upsert_rollups", series_array, step_array, bucket_array,
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
    for (const auto& row :
         txn.exec_params("SELECT series_id, (EXTRACT(EPOCH FROM ts) * 1000000)::int8 AS us, value "
                         "FROM metric_points WHERE (series_id, ts) > ($1, $2::timestamptz) "
                         "ORDER BY series_id, ts LIMIT $3",
                         after_series, TimeText(after_us), kPage)) {
      page.push_back({Parse<int64_t>(row[0]), Parse<int64_t>(row[1]), Parse<double>(row[2])});
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
      "SELECT EXISTS (SELECT 1 FROM metric_points) AND NOT EXISTS (SELECT 1 FROM metric_rollups)");
  if (!missing[0].as<bool>()) return 0;
  // One transaction, so that a crash leaves no half-built rollups (the next start begins again).
  const uint64_t total = RebuildRollups(txn);
  txn.commit();
  return total;
}

uint64_t RefreshAllTraces(pqxx::connection& conn, size_t page) {
  {
    // From scratch: a trace's refresh subtracts its stored contribution and adds the fresh one,
    // so rows that were never maintained (a bulk load) or drifted are made exact again.
    pqxx::work txn(conn);
    txn.exec0("TRUNCATE trace_usage, trace_model_usage, daily_traces, daily_models");
    txn.commit();
  }
  uint64_t total = 0;
  std::string after_project, after_id = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    pqxx::work txn(conn);
    std::set<TraceKey> keys;
    for (const auto& row : txn.exec_params(
             "SELECT project_id, id::text FROM traces WHERE (project_id, id) > ($1, $2::uuid) "
             "ORDER BY project_id, id LIMIT $3",
             after_project, after_id, page)) {
      keys.insert({row[0].c_str(), row[1].c_str()});
      after_project = row[0].c_str();
      after_id = row[1].c_str();
    }
    if (keys.empty()) break;
    RefreshTraceAggregates(txn, keys);
    txn.commit();
    total += keys.size();
  }
  return total;
}

void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces) {
  if (traces.empty()) return;
  std::vector<std::string> projects, ids;
  for (const auto& k : traces) {
    projects.push_back(k.project_id);
    ids.push_back(k.trace_id);
  }
  const auto project_array = common::PgTextArrayLiteral(projects);
  const auto id_array = common::PgTextArrayLiteral(ids);
  const auto empty = txn.exec_prepared("xtrace_refresh_derived", project_array, id_array);
  if (empty.empty()) return;  // the usual case: no cell emptied
  struct Cells {
    std::vector<std::string> project, environment, day, dims, model;
  } cells[2];  // traces, models
  for (const auto& row : empty) {
    Cells& c = cells[std::string_view(row[0].c_str()) == "traces" ? 0 : 1];
    c.project.emplace_back(row[1].c_str());
    c.environment.emplace_back(row[2].c_str());
    c.day.emplace_back(row[3].c_str());
    c.dims.emplace_back(row[4].c_str());
    if (!row[5].is_null()) c.model.emplace_back(row[5].c_str());
  }
  using common::PgTextArrayLiteral;
  if (!cells[0].project.empty()) {
    txn.exec_prepared("xtrace_drop_empty_daily_traces", PgTextArrayLiteral(cells[0].project),
                      PgTextArrayLiteral(cells[0].environment), PgTextArrayLiteral(cells[0].day),
                      PgTextArrayLiteral(cells[0].dims));
  }
  if (!cells[1].project.empty()) {
    txn.exec_prepared("xtrace_drop_empty_daily_models", PgTextArrayLiteral(cells[1].project),
                      PgTextArrayLiteral(cells[1].environment), PgTextArrayLiteral(cells[1].day),
                      PgTextArrayLiteral(cells[1].dims), PgTextArrayLiteral(cells[1].model));
  }
}

void PrepareFoldStatements(pqxx::connection& conn) {
  // The statements' arrays hold anything from one row (live traffic) to thousands (a backlog).
  // A generic plan assumes ten rows per unnest and picks nested loops over CTEs that grow
  // quadratically with a large chunk; a custom plan sees each array's length.
  conn.set_variable("plan_cache_mode", "force_custom_plan");
  // A chunk touches a few thousand keys of tables that hold millions, in pages that are cached
  // (they were just written). At the default random_page_cost of 4 the planner prices that many
  // index probes above reading a whole table of a few hundred thousand rows into a hash, and
  // picks the scan, whose cost then grows with the table. 1.1 prices cached pages as they are.
  conn.set_variable("random_page_cost", "1.1");
  // Once the tables are large the refresh's estimated cost passes jit_above_cost, and compiling
  // it took about 900 ms a chunk, for a statement that runs in under 100 ms.
  conn.set_variable("jit", "off");
  conn.prepare("xtrace_refresh_derived", kRefreshDerived);
  conn.prepare("xtrace_drop_empty_daily_traces", kDropEmptyDailyTraces);
  conn.prepare("xtrace_drop_empty_daily_models", kDropEmptyDailyModels);
  conn.prepare("xtrace_resolve_series", kResolveSeries);
  conn.prepare("xtrace_insert_points", kInsertPoints);
  conn.prepare("xtrace_select_rollups", kSelectRollups);
  conn.prepare("xtrace_upsert_rollups", kUpsertRollups);
  // One statement per entity kind and wave: the input arrays are sent and parsed once. The
  // UPDATE runs on the statement's snapshot, so it sees only rows that existed before it; the
  // rows the INSERT adds are already as the record makes them.
  const auto upsert = [](const char* input, const char* insert, const char* update,
                         const char* where, const char* insert_source = "u") {
    return std::string("WITH u AS MATERIALIZED (SELECT * FROM ") + input + "), inserted AS (" +
           insert + insert_source +
           " ON CONFLICT (project_id, id) DO NOTHING RETURNING project_id, id) " + update +
           "(SELECT u.* FROM u WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.project_id = "
           "u.project_id AND i.id = u.id)) AS u" +
           where;
  };
  conn.prepare("xtrace_upsert_traces", upsert(kTraceInput, kInsertTraces, kUpdateTraces,
                                              kUpdateTracesWhere, kInsertTracesSource));
  conn.prepare("xtrace_insert_placeholders", kInsertPlaceholders);
  conn.prepare("xtrace_upsert_observations", upsert(kObservationInput, kInsertObservations,
                                                    kUpdateObservations, kUpdateObservationsWhere) +
                                                 " RETURNING o.project_id, o.trace_id::text");
}

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

// Everything about a chunk that needs no database, rendered ready to send.
struct PreparedChunk {
  ChunkMetrics metrics;
  std::vector<std::string> placeholders;  // array literals; empty: none
  struct WaveLiterals {
    std::vector<std::string> traces, observations;  // empty: none
  };
  std::vector<WaveLiterals> waves;
  std::set<TraceKey> touched;  // traces the chunk's own events name
};

void PreparedChunkDeleter::operator()(PreparedChunk* chunk) const {
  delete chunk;
}

PreparedChunkPtr PrepareChunk(const std::vector<SequencedRecord>& records,
                              const common::Uuid& wal_id) {
  PreparedChunkPtr chunk(new PreparedChunk);
  const std::string wal = wal_id.ToString();
  std::vector<Wave> waves;
  // Placeholders for the whole chunk, in record order, go in before any wave: the first
  // observation naming an unknown trace decides its placeholder, and a real trace later in the
  // chunk replaces the placeholder exactly as it would have one from an earlier transaction.
  Columns placeholders{4};
  std::map<TraceKey, size_t> trace_occurrences, observation_occurrences;
  std::set<TraceKey> chunk_traces;  // traces with an event of their own in this chunk
  for (const auto& [seq, record] : records) {
    if (const auto* batch = std::get_if<schema::EntityBatch>(&record->events)) {
      for (const auto& event : batch->events) {
        if (const auto* t = std::get_if<schema::TraceEvent>(&event)) {
          chunk_traces.insert({Text(t->project_id.value_or(record->project_id)), t->id});
        }
      }
    }
  }
  auto wave_for = [&](std::map<TraceKey, size_t>& occurrences, TraceKey key) -> Wave& {
    const size_t k = occurrences[key]++;
    if (k >= waves.size()) waves.resize(k + 1);
    return waves[k];
  };
  auto& touched = chunk->touched;
  for (const auto& [seq, record] : records) {
    if (const auto* batch = std::get_if<schema::EntityBatch>(&record->events)) {
      // One record may name an entity more than once (a batch listing the same observation
      // twice): each event gets its own position, so the provenance check orders them too.
      for (size_t i = 0; i < batch->events.size(); ++i) {
        const uint64_t position = EventPosition(seq, schema::PositionOf(*record, i));
        if (const auto* t = std::get_if<schema::TraceEvent>(&batch->events[i])) {
          AddTrace(wave_for(trace_occurrences,
                            {Text(t->project_id.value_or(record->project_id)), t->id}),
                   *record, *t, wal, position, touched);
        } else if (const auto* o = std::get_if<schema::ObservationEvent>(&batch->events[i])) {
          AddObservation(wave_for(observation_occurrences,
                                  {Text(o->project_id.value_or(record->project_id)), o->id}),
                         placeholders, chunk_traces, *record, *o, wal, position, touched);
        } else {
          // Scores and deletions come with the front doors that send them; no build writes
          // them before it can fold them, so one here is from a newer build.
          throw UnfoldableRecord(seq, "score and deletion events are not projected by this build");
        }
      }
    } else if (const auto* metrics = std::get_if<schema::MetricBatch>(&record->events)) {
      AddMetrics(chunk->metrics, *record, *metrics);
    }
  }
  if (!placeholders.empty()) chunk->placeholders = placeholders.Literals();
  for (const auto& w : waves) {
    auto& out = chunk->waves.emplace_back();
    if (!w.traces.empty()) out.traces = w.traces.Literals();
    if (!w.observations.empty()) out.observations = w.observations.Literals();
  }
  return chunk;
}

void ApplyChunk(pqxx::work& txn, PreparedChunk& chunk, std::set<TraceKey>& touched,
                SeriesCache& series, RollupCache* rollups) {
  // Whatever an earlier, uncommitted transaction learnt is void, even if this chunk has no
  // metric points (its Commit would otherwise publish those entries).
  series.Abandon();
  if (rollups != nullptr) rollups->Abandon();
  touched.insert(chunk.touched.begin(), chunk.touched.end());
  FoldMetrics(txn, chunk.metrics, series, rollups);
  Exec(txn, "xtrace_insert_placeholders", chunk.placeholders);
  for (const auto& w : chunk.waves) ApplyWave(txn, w.traces, w.observations, touched);
}

void FoldRecords(pqxx::work& txn, const std::vector<SequencedRecord>& records,
                 const common::Uuid& wal_id, std::set<TraceKey>& touched, SeriesCache& series) {
  ApplyChunk(txn, *PrepareChunk(records, wal_id), touched, series);
}

}  // namespace xtrace::projector
