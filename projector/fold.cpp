#include "projector/fold.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/prepared_statement>
#include <pqxx/result>

#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <tuple>
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
Param Time(const std::optional<common::TimePoint>& t) {
  if (!t) return std::nullopt;
  return common::FormatRfc3339(*t);
}
Param Uuid(const std::optional<common::Uuid>& u) {
  if (!u) return std::nullopt;
  return u->ToString();
}
template <class Number>
Param Num(const std::optional<Number>& n) {
  if (!n) return std::nullopt;
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *n);
  return std::string(buf, end);
}
Param Bool(const std::optional<bool>& b) {
  if (!b) return std::nullopt;
  return *b ? "true" : "false";
}

// One statement per metric record: series are created once (first sight) and points inserted in
// bulk from parallel arrays; ON CONFLICT DO NOTHING makes a resent point, or a replayed record,
// a no-op.
constexpr char kInsertMetrics[] = R"sql(
WITH input AS (
  -- Of points repeated within the input (a chunk's records, in order), the first one wins.
  SELECT DISTINCT ON (name, labels, ts) name, labels, ts, value
  FROM unnest($3::text[], $4::jsonb[], $5::timestamptz[], $6::float8[])
       WITH ORDINALITY AS u(name, labels, ts, value, n)
  ORDER BY name, labels, ts, n),
created AS (
  INSERT INTO metric_series (project_id, environment, name, labels)
  SELECT DISTINCT $1, $2, name, labels FROM input
  ON CONFLICT (project_id, environment, name, labels) DO NOTHING
  RETURNING id, name, labels),
series AS (
  SELECT id, name, labels FROM created
  UNION ALL
  SELECT s.id, s.name, s.labels FROM metric_series s
  WHERE s.project_id = $1 AND s.environment = $2
    AND (s.name, s.labels) IN (SELECT name, labels FROM input)),
inserted AS (
  INSERT INTO metric_points (project_id, series_id, ts, value)
  SELECT $1, series.id, input.ts, input.value
  FROM input JOIN series ON series.name = input.name AND series.labels = input.labels
  ON CONFLICT (project_id, series_id, ts) DO NOTHING
  RETURNING series_id, ts, value)
-- Only the points this statement inserted reach the rollups: a resend never counts twice.
SELECT series_id, (EXTRACT(EPOCH FROM ts) * 1000000)::int8, value FROM inserted
)sql";

std::string LabelsJson(const std::vector<std::pair<std::string, std::string>>& labels) {
  boost::json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return boost::json::serialize(o);
}

// Step rollups of newly inserted points, aggregated here and merged into metric_rollups with
// one statement; an existing bucket adds counts and merges sketches.
constexpr char kUpsertRollups[] = R"sql(
INSERT INTO metric_rollups AS r (project_id, series_id, step, bucket, count, sum, min, max, last,
                                 last_ts, sketch)
SELECT $1, u.* FROM unnest($2::int8[], $3::int4[], $4::timestamptz[], $5::int8[], $6::float8[],
                           $7::float8[], $8::float8[], $9::float8[], $10::timestamptz[],
                           $11::jsonb[]) AS u
ON CONFLICT (project_id, series_id, step, bucket) DO UPDATE SET
  count   = r.count + EXCLUDED.count,
  sum     = r.sum + EXCLUDED.sum,
  min     = LEAST(r.min, EXCLUDED.min),
  max     = GREATEST(r.max, EXCLUDED.max),
  last    = CASE WHEN EXCLUDED.last_ts > r.last_ts THEN EXCLUDED.last ELSE r.last END,
  last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts),
  sketch  = xtrace_sketch_merge(r.sketch, EXCLUDED.sketch)
)sql";

struct RollupCell {
  int64_t count = 0;
  double sum = 0, min = 0, max = 0, last = 0;
  int64_t last_us = INT64_MIN;
  std::map<std::string, int64_t> sketch;
};

// The metric points of a chunk, per (project, environment), in record order: one statement
// each, whose first-occurrence rule then also decides between records of the chunk.
struct MetricColumns {
  std::vector<std::string> names, labels, times, values;
};

void AddMetrics(std::map<std::pair<std::string, std::string>, MetricColumns>& by_scope,
                const schema::WalRecord& rec, const schema::MetricBatch& m) {
  MetricColumns& c = by_scope[{Text(rec.project_id), Text(rec.environment)}];
  for (const auto& p : m.points) {
    c.names.push_back(SanitizeText(p.name));
    c.labels.push_back(SanitizeJson(LabelsJson(p.labels)));
    c.times.push_back(common::FormatRfc3339(p.timestamp));
    c.values.push_back(*Num(std::optional<double>(p.value)));
  }
}

void FoldMetrics(pqxx::work& txn,
                 const std::map<std::pair<std::string, std::string>, MetricColumns>& by_scope) {
  static constexpr int64_t kSteps[] = {60, 300, 3600, 86400};
  for (const auto& [scope, c] : by_scope) {
    const auto inserted = txn.exec_prepared(
        "xtrace_insert_metrics", scope.first, scope.second, common::PgTextArrayLiteral(c.names),
        common::PgTextArrayLiteral(c.labels), common::PgTextArrayLiteral(c.times),
        common::PgTextArrayLiteral(c.values));
    // (series, step, bucket start in µs) -> aggregate of the points just inserted.
    std::map<std::tuple<int64_t, int64_t, int64_t>, RollupCell> cells;
    for (const auto& row : inserted) {
      const auto series = row[0].as<int64_t>();
      const auto ts_us = row[1].as<int64_t>();
      const auto value = row[2].as<double>();
      const std::string key = common::Sketch::KeyOf(value);
      for (const int64_t step : kSteps) {
        const int64_t step_us = step * 1000000;
        const int64_t bucket =
            (ts_us >= 0 ? ts_us / step_us : (ts_us - step_us + 1) / step_us) * step_us;
        RollupCell& cell = cells[{series, step, bucket}];
        cell.min = cell.count == 0 ? value : std::min(cell.min, value);
        cell.max = cell.count == 0 ? value : std::max(cell.max, value);
        ++cell.count;
        cell.sum += value;
        if (ts_us > cell.last_us) {
          cell.last_us = ts_us;
          cell.last = value;
        }
        ++cell.sketch[key];
      }
    }
    if (cells.empty()) continue;
    std::vector<std::string> series_ids, steps, buckets, counts, sums, mins, maxs, lasts, last_ts,
        sketches;
    const auto time_of = [](int64_t us) {
      return common::FormatRfc3339(common::TimePoint(common::Micros(us)));
    };
    for (const auto& [k, cell] : cells) {
      series_ids.push_back(std::to_string(std::get<0>(k)));
      steps.push_back(std::to_string(std::get<1>(k)));
      buckets.push_back(time_of(std::get<2>(k)));
      counts.push_back(std::to_string(cell.count));
      sums.push_back(*Num(std::optional<double>(cell.sum)));
      mins.push_back(*Num(std::optional<double>(cell.min)));
      maxs.push_back(*Num(std::optional<double>(cell.max)));
      lasts.push_back(*Num(std::optional<double>(cell.last)));
      last_ts.push_back(time_of(cell.last_us));
      boost::json::object sketch;
      for (const auto& [key, n] : cell.sketch) sketch[key] = n;
      sketches.push_back(boost::json::serialize(sketch));
    }
    txn.exec_prepared("xtrace_upsert_rollups", scope.first, common::PgTextArrayLiteral(series_ids),
                      common::PgTextArrayLiteral(steps), common::PgTextArrayLiteral(buckets),
                      common::PgTextArrayLiteral(counts), common::PgTextArrayLiteral(sums),
                      common::PgTextArrayLiteral(mins), common::PgTextArrayLiteral(maxs),
                      common::PgTextArrayLiteral(lasts), common::PgTextArrayLiteral(last_ts),
                      common::PgTextArrayLiteral(sketches));
  }
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
  latency, total_cost, src_wal, src_seq)
SELECT u.project_id, u.id, COALESCE(u.ts, u.received), FALSE, u.environment, u.name, u.user_id,
  u.session_id, u.release, u.version, u.external_id, u.input, u.output, u.metadata,
  (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM jsonb_array_elements_text(u.tags) AS x),
  COALESCE(u.public, FALSE), COALESCE(u.bookmarked, FALSE), u.latency, u.total_cost,
  u.src_wal, u.src_seq
FROM )sql";

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
Param TagsJson(const std::optional<std::vector<std::string>>& tags) {
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
  touched.insert({Text(t.project_id.value_or(rec.project_id)), t.id.ToString()});
  w.traces.AddRow({Text(t.project_id.value_or(rec.project_id)),
                   t.id.ToString(),
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

void AddObservation(Wave& w, Columns& placeholders, const schema::WalRecord& rec,
                    const schema::ObservationEvent& o, const std::string& wal, uint64_t seq,
                    std::set<TraceKey>& touched) {
  const std::string project = Text(o.project_id.value_or(rec.project_id));
  const std::string environment = Text(o.environment.value_or(rec.environment));
  const std::string trace_id = o.trace_id.ToString();
  touched.insert({project, trace_id});
  placeholders.AddRow(
      {project, trace_id, Time(o.start_time ? o.start_time : rec.received_at), environment});
  w.observations.AddRow({project,
                         o.id.ToString(),
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
                         Uuid(o.parent_observation_id),
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

void Exec(pqxx::work& txn, const char* statement, const Columns& columns) {
  if (columns.empty()) return;
  const auto literals = columns.Literals();
  txn.exec_prepared(statement, pqxx::prepare::make_dynamic_params(literals));
}

void ApplyWave(pqxx::work& txn, const Wave& w) {
  Exec(txn, "xtrace_upsert_traces", w.traces);
  Exec(txn, "xtrace_upsert_observations", w.observations);
}

constexpr char kRefreshTraceAggregates[] = R"sql(
UPDATE traces t
SET obs_latency = a.latency, obs_total_cost = a.total_cost
FROM (SELECT o.project_id, o.trace_id,
             EXTRACT(EPOCH FROM (max(o.end_time) - min(o.start_time)))::float8 AS latency,
             sum(o.calculated_total_cost) AS total_cost
      FROM observations o
      JOIN unnest($1::text[], $2::uuid[]) AS k(project_id, trace_id)
        ON o.project_id = k.project_id AND o.trace_id = k.trace_id
      GROUP BY o.project_id, o.trace_id) AS a
WHERE t.project_id = a.project_id AND t.id = a.trace_id
  AND (t.obs_latency IS DISTINCT FROM a.latency OR t.obs_total_cost IS DISTINCT FROM a.total_cost)
)sql";

// The per-trace usage rows of the touched traces are recomputed, and the difference to the old
// rows is added to the daily sums.
constexpr char kRefreshDailyTraces[] = R"sql(
WITH k AS (SELECT * FROM unnest($1::text[], $2::uuid[]) AS k(project_id, trace_id)),
old AS (
  DELETE FROM trace_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.*),
fresh AS (
  SELECT t.project_id, t.id AS trace_id, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         jsonb_build_object('name', t.name, 'userId', t.user_id, 'version', t.version,
                            'release', t.release, 'tags', to_jsonb(t.tags)) AS dims,
         (SELECT count(*) FROM observations o
          WHERE o.project_id = t.project_id AND o.trace_id = t.id) AS count_observations,
         COALESCE(t.total_cost, t.obs_total_cost, 0) AS total_cost
  FROM traces t JOIN k ON t.project_id = k.project_id AND t.id = k.trace_id),
inserted AS (INSERT INTO trace_usage SELECT * FROM fresh),
delta AS (
  SELECT project_id, environment, day, dims, sum(n) AS n, sum(count_observations) AS obs,
         sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, 1 AS n, count_observations, total_cost
        FROM fresh
        UNION ALL
        SELECT project_id, environment, day, dims, -1, -count_observations, -total_cost
        FROM old) AS d
  GROUP BY project_id, environment, day, dims)
INSERT INTO daily_traces AS r (project_id, environment, day, dims, count_traces,
                               count_observations, total_cost)
SELECT project_id, environment, day, dims, n, obs, cost FROM delta
ON CONFLICT (project_id, environment, day, dims) DO UPDATE SET
  count_traces       = r.count_traces + EXCLUDED.count_traces,
  count_observations = r.count_observations + EXCLUDED.count_observations,
  total_cost         = r.total_cost + EXCLUDED.total_cost
)sql";

constexpr char kRefreshDailyModels[] = R"sql(
WITH k AS (SELECT * FROM unnest($1::text[], $2::uuid[]) AS k(project_id, trace_id)),
old AS (
  DELETE FROM trace_model_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.*),
fresh AS (
  SELECT t.project_id, t.id AS trace_id, COALESCE(o.model, 'unknown') AS model, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         jsonb_build_object('name', t.name, 'userId', t.user_id, 'version', t.version,
                            'release', t.release, 'tags', to_jsonb(t.tags)) AS dims,
         count(*) AS count_observations,
         COALESCE(sum(o.input_tokens_d), 0)::bigint AS input_usage,
         COALESCE(sum(o.output_tokens_d), 0)::bigint AS output_usage,
         COALESCE(sum(o.total_tokens_d), 0)::bigint AS total_usage,
         COALESCE(sum(o.calculated_total_cost), 0) AS total_cost
  FROM traces t JOIN k ON t.project_id = k.project_id AND t.id = k.trace_id
  JOIN observations o ON o.project_id = t.project_id AND o.trace_id = t.id
  WHERE o.type = 'GENERATION'
  GROUP BY t.project_id, t.id, COALESCE(o.model, 'unknown'), t.environment, t."timestamp",
           t.name, t.user_id, t.version, t.release, t.tags),
inserted AS (INSERT INTO trace_model_usage SELECT * FROM fresh),
delta AS (
  SELECT project_id, environment, day, dims, model, sum(n) AS n, sum(count_observations) AS obs,
         sum(input_usage) AS input, sum(output_usage) AS output, sum(total_usage) AS total,
         sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, model, 1 AS n, count_observations,
               input_usage, output_usage, total_usage, total_cost FROM fresh
        UNION ALL
        SELECT project_id, environment, day, dims, model, -1, -count_observations,
               -input_usage, -output_usage, -total_usage, -total_cost FROM old) AS d
  GROUP BY project_id, environment, day, dims, model)
INSERT INTO daily_models AS r (project_id, environment, day, dims, model, count_traces,
                               count_observations, input_usage, output_usage, total_usage,
                               total_cost)
SELECT project_id, environment, day, dims, model, n, obs, input, output, total, cost FROM delta
ON CONFLICT (project_id, environment, day, dims, model) DO UPDATE SET
  count_traces       = r.count_traces + EXCLUDED.count_traces,
  count_observations = r.count_observations + EXCLUDED.count_observations,
  input_usage        = r.input_usage + EXCLUDED.input_usage,
  output_usage       = r.output_usage + EXCLUDED.output_usage,
  total_usage        = r.total_usage + EXCLUDED.total_usage,
  total_cost         = r.total_cost + EXCLUDED.total_cost
)sql";

}  // namespace

void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces) {
  if (traces.empty()) return;
  std::vector<std::string> projects, ids;
  for (const auto& k : traces) {
    projects.push_back(k.project_id);
    ids.push_back(k.trace_id);
  }
  const auto project_array = common::PgTextArrayLiteral(projects);
  const auto id_array = common::PgTextArrayLiteral(ids);
  txn.exec_prepared("xtrace_refresh_trace_aggregates", project_array, id_array);
  // After the aggregates: the daily rows read the traces' costs.
  txn.exec_prepared("xtrace_refresh_daily_traces", project_array, id_array);
  txn.exec_prepared("xtrace_refresh_daily_models", project_array, id_array);
}

void PrepareFoldStatements(pqxx::connection& conn) {
  conn.prepare("xtrace_refresh_trace_aggregates", kRefreshTraceAggregates);
  conn.prepare("xtrace_refresh_daily_traces", kRefreshDailyTraces);
  conn.prepare("xtrace_observation_traces",
               "SELECT o.project_id, o.trace_id::text FROM observations o "
               "JOIN unnest($1::text[], $2::uuid[]) AS k(project_id, id) "
               "ON o.project_id = k.project_id AND o.id = k.id");
  conn.prepare("xtrace_refresh_daily_models", kRefreshDailyModels);
  conn.prepare("xtrace_insert_metrics", kInsertMetrics);
  conn.prepare("xtrace_upsert_rollups", kUpsertRollups);
  // One statement per entity kind and wave: the input arrays are sent and parsed once. The
  // UPDATE runs on the statement's snapshot, so it sees only rows that existed before it; the
  // rows the INSERT adds are already as the record makes them.
  const auto upsert = [](const char* input, const char* insert, const char* update,
                         const char* where) {
    return std::string("WITH u AS MATERIALIZED (SELECT * FROM ") + input + "), inserted AS (" +
           insert + "u ON CONFLICT (project_id, id) DO NOTHING) " + update + "u" + where;
  };
  conn.prepare("xtrace_upsert_traces",
               upsert(kTraceInput, kInsertTraces, kUpdateTraces, kUpdateTracesWhere));
  conn.prepare("xtrace_insert_placeholders", kInsertPlaceholders);
  conn.prepare("xtrace_upsert_observations", upsert(kObservationInput, kInsertObservations,
                                                    kUpdateObservations, kUpdateObservationsWhere));
}

void FoldRecords(pqxx::work& txn, const std::vector<SequencedRecord>& records,
                 const common::Uuid& wal_id, std::set<TraceKey>& touched) {
  const std::string wal = wal_id.ToString();
  std::vector<Wave> waves;
  // Placeholders for the whole chunk, in record order, go in before any wave: the first
  // observation naming an unknown trace decides its placeholder, and a real trace later in the
  // chunk replaces the placeholder exactly as it would have one from an earlier transaction.
  Columns placeholders{4};
  std::map<std::pair<std::string, std::string>, MetricColumns> metric_scopes;
  std::map<TraceKey, size_t> trace_occurrences, observation_occurrences;
  auto wave_for = [&](std::map<TraceKey, size_t>& occurrences, TraceKey key) -> Wave& {
    const size_t k = occurrences[key]++;
    if (k >= waves.size()) waves.resize(k + 1);
    return waves[k];
  };
  for (const auto& [seq, record] : records) {
    if (const auto* batch = std::get_if<schema::TraceBatch>(&record->events)) {
      // One record may name an entity more than once (a batch listing the same observation
      // twice): each event gets its own position, so the provenance check orders them too.
      uint64_t position = EventPosition(seq, 0);
      if (batch->trace) {
        const auto& t = *batch->trace;
        AddTrace(wave_for(trace_occurrences,
                          {Text(t.project_id.value_or(record->project_id)), t.id.ToString()}),
                 *record, t, wal, position, touched);
      }
      for (size_t i = 0; i < batch->observations.size(); ++i) {
        const auto& o = batch->observations[i];
        position = EventPosition(seq, i + 1);
        AddObservation(wave_for(observation_occurrences,
                                {Text(o.project_id.value_or(record->project_id)), o.id.ToString()}),
                       placeholders, *record, o, wal, position, touched);
      }
    } else if (const auto* metrics = std::get_if<schema::MetricBatch>(&record->events)) {
      AddMetrics(metric_scopes, *record, *metrics);
    }
  }
  FoldMetrics(txn, metric_scopes);
  Exec(txn, "xtrace_insert_placeholders", placeholders);
  for (const auto& w : waves) ApplyWave(txn, w);

  // An observation keeps the trace it was first recorded under, even when a later event names
  // another: the trace whose aggregates change is the stored one.
  if (!observation_occurrences.empty()) {
    std::vector<std::string> projects, ids;
    for (const auto& [key, n] : observation_occurrences) {
      projects.push_back(key.project_id);
      ids.push_back(key.trace_id);  // the observation id, in this map
    }
    for (const auto& row :
         txn.exec_prepared("xtrace_observation_traces", common::PgTextArrayLiteral(projects),
                           common::PgTextArrayLiteral(ids))) {
      touched.insert({row[0].c_str(), row[1].c_str()});
    }
  }
}

}  // namespace xtrace::projector
