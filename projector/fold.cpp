#include "projector/fold.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/prepared_statement>

#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "common/pg_text.hpp"
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
Param TextArray(const std::optional<std::vector<std::string>>& items) {
  if (!items) return std::nullopt;
  std::vector<std::string> clean;
  clean.reserve(items->size());
  for (const auto& item : *items) clean.push_back(SanitizeText(item));
  return common::PgTextArrayLiteral(clean);
}

constexpr char kUpsertTrace[] = R"sql(
INSERT INTO traces AS t (project_id, id, "timestamp", placeholder, environment, name, user_id,
  session_id, release, version, external_id, input, output, metadata, tags, public, bookmarked,
  latency, total_cost)
VALUES ($1, $2::uuid, COALESCE($3::timestamptz, $4::timestamptz), FALSE, $5, $6, $7, $8, $9, $10,
  $11, $12::jsonb, $13::jsonb, $14::jsonb,
  (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest($15::text[]) AS x),
  COALESCE($16::boolean, FALSE), COALESCE($17::boolean, FALSE), $18::float8, $19::float8)
ON CONFLICT (project_id, id) DO UPDATE SET
  "timestamp"  = CASE WHEN t.placeholder THEN EXCLUDED."timestamp" ELSE t."timestamp" END,
  environment  = CASE WHEN t.placeholder THEN EXCLUDED.environment ELSE t.environment END,
  placeholder  = FALSE,
  name         = COALESCE(EXCLUDED.name, t.name),
  user_id      = COALESCE(EXCLUDED.user_id, t.user_id),
  session_id   = COALESCE(EXCLUDED.session_id, t.session_id),
  release      = COALESCE(EXCLUDED.release, t.release),
  version      = COALESCE(EXCLUDED.version, t.version),
  external_id  = COALESCE(EXCLUDED.external_id, t.external_id),
  input        = COALESCE(EXCLUDED.input, t.input),
  output       = COALESCE(EXCLUDED.output, t.output),
  metadata     = xtrace_jsonb_merge(t.metadata, EXCLUDED.metadata),
  tags         = (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}')
                  FROM unnest(t.tags || EXCLUDED.tags) AS x),
  public       = COALESCE($16::boolean, t.public),
  bookmarked   = COALESCE($17::boolean, t.bookmarked),
  latency      = COALESCE(EXCLUDED.latency, t.latency),
  total_cost   = COALESCE(EXCLUDED.total_cost, t.total_cost),
  updated_at   = now()
)sql";

constexpr char kPlaceholderTrace[] = R"sql(
INSERT INTO traces (project_id, id, "timestamp", placeholder, environment)
VALUES ($1, $2::uuid, $3::timestamptz, TRUE, $4)
ON CONFLICT (project_id, id) DO NOTHING
)sql";

constexpr char kUpsertObservation[] = R"sql(
INSERT INTO observations AS o (project_id, id, trace_id, type, environment, name, start_time,
  end_time, completion_start_time, model, model_parameters, input, output, usage, metadata, level,
  status_message, parent_observation_id, prompt_id, prompt_name, prompt_version, model_id,
  input_price, output_price, total_price, calculated_input_cost, calculated_output_cost,
  calculated_total_cost, latency, time_to_first_token, completion_tokens, prompt_tokens,
  total_tokens, unit)
VALUES ($1, $2::uuid, $3::uuid, COALESCE($4, 'GENERATION'), $5, $6, $7::timestamptz,
  $8::timestamptz, $9::timestamptz, $10, $11::jsonb, $12::jsonb, $13::jsonb, $14::jsonb,
  $15::jsonb, $16, $17, $18::uuid, $19, $20, $21, $22, $23::float8, $24::float8, $25::float8,
  $26::float8, $27::float8, $28::float8, $29::float8, $30::float8, $31::bigint, $32::bigint,
  $33::bigint, $34)
ON CONFLICT (project_id, id) DO UPDATE SET
  type                   = COALESCE($4, o.type),
  name                   = COALESCE(EXCLUDED.name, o.name),
  start_time             = COALESCE(o.start_time, EXCLUDED.start_time),
  end_time               = COALESCE(EXCLUDED.end_time, o.end_time),
  completion_start_time  = COALESCE(EXCLUDED.completion_start_time, o.completion_start_time),
  model                  = COALESCE(EXCLUDED.model, o.model),
  model_parameters       = COALESCE(EXCLUDED.model_parameters, o.model_parameters),
  input                  = COALESCE(EXCLUDED.input, o.input),
  output                 = COALESCE(EXCLUDED.output, o.output),
  usage                  = COALESCE(EXCLUDED.usage, o.usage),
  metadata               = xtrace_jsonb_merge(o.metadata, EXCLUDED.metadata),
  level                  = COALESCE(EXCLUDED.level, o.level),
  status_message         = COALESCE(EXCLUDED.status_message, o.status_message),
  parent_observation_id  = COALESCE(EXCLUDED.parent_observation_id, o.parent_observation_id),
  prompt_id              = COALESCE(EXCLUDED.prompt_id, o.prompt_id),
  prompt_name            = COALESCE(EXCLUDED.prompt_name, o.prompt_name),
  prompt_version         = COALESCE(EXCLUDED.prompt_version, o.prompt_version),
  model_id               = COALESCE(EXCLUDED.model_id, o.model_id),
  input_price            = COALESCE(EXCLUDED.input_price, o.input_price),
  output_price           = COALESCE(EXCLUDED.output_price, o.output_price),
  total_price            = COALESCE(EXCLUDED.total_price, o.total_price),
  calculated_input_cost  = COALESCE(EXCLUDED.calculated_input_cost, o.calculated_input_cost),
  calculated_output_cost = COALESCE(EXCLUDED.calculated_output_cost, o.calculated_output_cost),
  calculated_total_cost  = COALESCE(EXCLUDED.calculated_total_cost, o.calculated_total_cost),
  latency                = COALESCE(EXCLUDED.latency, o.latency),
  time_to_first_token    = COALESCE(EXCLUDED.time_to_first_token, o.time_to_first_token),
  completion_tokens      = COALESCE(EXCLUDED.completion_tokens, o.completion_tokens),
  prompt_tokens          = COALESCE(EXCLUDED.prompt_tokens, o.prompt_tokens),
  total_tokens           = COALESCE(EXCLUDED.total_tokens, o.total_tokens),
  unit                   = COALESCE(EXCLUDED.unit, o.unit),
  updated_at             = now()
)sql";

// One statement per metric record: series are created once (first sight) and points inserted in
// bulk from parallel arrays; ON CONFLICT DO NOTHING makes a resent point, or a replayed record,
// a no-op.
constexpr char kInsertMetrics[] = R"sql(
WITH input AS (
  -- Of points repeated within one record, the first one wins, as across records.
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
    AND (s.name, s.labels) IN (SELECT name, labels FROM input))
INSERT INTO metric_points (project_id, series_id, ts, value)
SELECT $1, series.id, input.ts, input.value
FROM input JOIN series ON series.name = input.name AND series.labels = input.labels
ON CONFLICT (project_id, series_id, ts) DO NOTHING
)sql";

std::string LabelsJson(const std::vector<std::pair<std::string, std::string>>& labels) {
  boost::json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return boost::json::serialize(o);
}

void FoldMetrics(pqxx::work& txn, const schema::WalRecord& rec, const schema::MetricBatch& m) {
  std::vector<std::string> names, labels, times, values;
  names.reserve(m.points.size());
  labels.reserve(m.points.size());
  times.reserve(m.points.size());
  values.reserve(m.points.size());
  for (const auto& p : m.points) {
    names.push_back(SanitizeText(p.name));
    labels.push_back(SanitizeJson(LabelsJson(p.labels)));
    times.push_back(common::FormatRfc3339(p.timestamp));
    values.push_back(*Num(std::optional<double>(p.value)));
  }
  txn.exec_prepared("xtrace_insert_metrics", Text(rec.project_id), Text(rec.environment),
                    common::PgTextArrayLiteral(names), common::PgTextArrayLiteral(labels),
                    common::PgTextArrayLiteral(times), common::PgTextArrayLiteral(values));
}

void FoldTrace(pqxx::work& txn, const schema::WalRecord& rec, const schema::TraceEvent& t) {
  const std::vector<Param> params = {
      Text(t.project_id.value_or(rec.project_id)),
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
      TextArray(t.tags),
      Bool(t.is_public),
      Bool(t.bookmarked),
      Num(t.latency),
      Num(t.total_cost),
  };
  txn.exec_prepared("xtrace_upsert_trace", pqxx::prepare::make_dynamic_params(params));
}

void FoldObservation(pqxx::work& txn, const schema::WalRecord& rec,
                     const schema::ObservationEvent& o, std::set<TraceKey>& touched) {
  const std::string project = Text(o.project_id.value_or(rec.project_id));
  touched.insert({project, o.trace_id.ToString()});
  const std::string environment = Text(o.environment.value_or(rec.environment));
  const std::vector<Param> placeholder = {project, o.trace_id.ToString(),
                                          Time(o.start_time ? o.start_time : rec.received_at),
                                          environment};
  txn.exec_prepared("xtrace_placeholder_trace", pqxx::prepare::make_dynamic_params(placeholder));

  const std::vector<Param> params = {
      project,
      o.id.ToString(),
      o.trace_id.ToString(),
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
  };
  txn.exec_prepared("xtrace_upsert_observation", pqxx::prepare::make_dynamic_params(params));
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

}  // namespace

void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces) {
  if (traces.empty()) return;
  std::vector<std::string> projects, ids;
  for (const auto& k : traces) {
    projects.push_back(k.project_id);
    ids.push_back(k.trace_id);
  }
  txn.exec_prepared("xtrace_refresh_trace_aggregates", common::PgTextArrayLiteral(projects),
                    common::PgTextArrayLiteral(ids));
}

void PrepareFoldStatements(pqxx::connection& conn) {
  conn.prepare("xtrace_refresh_trace_aggregates", kRefreshTraceAggregates);
  conn.prepare("xtrace_upsert_trace", kUpsertTrace);
  conn.prepare("xtrace_placeholder_trace", kPlaceholderTrace);
  conn.prepare("xtrace_upsert_observation", kUpsertObservation);
  conn.prepare("xtrace_insert_metrics", kInsertMetrics);
}

void Fold(pqxx::work& txn, const schema::WalRecord& record, std::set<TraceKey>& touched) {
  if (const auto* batch = std::get_if<schema::TraceBatch>(&record.events)) {
    if (batch->trace) FoldTrace(txn, record, *batch->trace);
    for (const auto& o : batch->observations) FoldObservation(txn, record, o, touched);
  }
  if (const auto* metrics = std::get_if<schema::MetricBatch>(&record.events)) {
    if (!metrics->points.empty()) FoldMetrics(txn, record, *metrics);
  }
}

}  // namespace xtrace::projector
