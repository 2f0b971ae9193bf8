#include "query/traces.hpp"

#include <boost/json.hpp>
#include <pqxx/connection>
#include <pqxx/prepared_statement>
#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>
#include <charconv>

#include "common/json.hpp"
#include "common/pg_text.hpp"
#include "common/uuid.hpp"
#include "query/params.hpp"

namespace xtrace::query {
namespace {

namespace json = boost::json;
using common::Error;
using Param = std::optional<std::string>;

// Columns shared by the list and the detail, in the order Row() reads them.
constexpr char kTraceColumns[] = R"sql(
  t.id::text, (EXTRACT(EPOCH FROM t."timestamp") * 1000000)::int8, t.name, t.input::text,
  t.output::text, t.session_id, t.release, t.version, t.user_id, t.metadata::text,
  array_to_json(t.tags)::text,
  t.public, t.project_id, t.external_id, t.bookmarked, t.environment,
  COALESCE(t.latency, t.obs_latency), COALESCE(t.total_cost, t.obs_total_cost),
  (EXTRACT(EPOCH FROM t.created_at) * 1000000)::int8,
  (EXTRACT(EPOCH FROM t.updated_at) * 1000000)::int8)sql";

json::value JsonOrNull(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  // Stored documents are never deeper than the body they came in (common::kMaxJsonDepth).
  json::parse_options options;
  options.max_depth = common::kMaxJsonDepth;
  return json::parse(f.c_str(), {}, options);
}

json::value StringOrNull(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  return json::string(f.c_str());
}

json::value DoubleOrNull(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  return f.as<double>();
}

json::value TimeOf(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  return json::string(common::FormatRfc3339(common::TimePoint(common::Micros(f.as<int64_t>()))));
}

// The reference renders prompt versions as numbers; a version that is not an integer is null.
json::value PromptVersion(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  const std::string_view s = f.c_str();
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return nullptr;
  return n;
}

// A text[] read as JSON (array_to_json): libpqxx 6.4's array parser also splits unquoted
// elements at ';' (PostgreSQL quotes only its ',' delimiter), which cut tags like "a;b" in two.
json::array TextArray(const pqxx::field& f) {
  if (f.is_null()) return {};
  return json::parse(f.c_str()).as_array();
}

// One trace row in the reference key order; `observations` and `scores` are appended by callers.
json::object TraceObject(const pqxx::row& r) {
  json::object o;
  const std::string id = r[0].c_str();
  const std::string project = r[12].c_str();
  o["id"] = id;
  o["timestamp"] = TimeOf(r[1]);
  o["name"] = StringOrNull(r[2]);
  o["input"] = JsonOrNull(r[3]);
  o["output"] = JsonOrNull(r[4]);
  o["sessionId"] = StringOrNull(r[5]);
  o["release"] = StringOrNull(r[6]);
  o["version"] = StringOrNull(r[7]);
  o["userId"] = StringOrNull(r[8]);
  o["metadata"] = JsonOrNull(r[9]);
  o["tags"] = TextArray(r[10]);
  o["public"] = r[11].as<bool>();
  o["projectId"] = project;
  o["externalId"] = StringOrNull(r[13]);
  o["bookmarked"] = r[14].as<bool>();
  o["environment"] = r[15].c_str();
  o["htmlPath"] = "/project/" + project + "/traces/" + id;
  o["latency"] = DoubleOrNull(r[16]);
  o["totalCost"] = DoubleOrNull(r[17]);
  o["createdAt"] = TimeOf(r[18]);
  o["updatedAt"] = TimeOf(r[19]);
  return o;
}

}  // namespace

common::Result<TraceListParams> ParseTraceListParams(std::string_view query) {
  auto params = QueryParams::Parse(query);
  if (!params) return params.error();
  TraceListParams p;
  auto page = params->Integer("page");
  if (!page) return page.error();
  p.page = std::max<int64_t>(1, page->value_or(1));
  auto limit = params->Integer("limit");
  if (!limit) return limit.error();
  p.limit = std::clamp<int64_t>(limit->value_or(50), 1, 200);
  // Pages beyond this would overflow the OFFSET arithmetic; nobody pages that deep.
  if (p.page > 10'000'000) return Error::BadParameter("page", "page must be at most 10000000");

  for (auto [name, target] : {std::pair{"userId", &p.user_id},
                              {"name", &p.name},
                              {"sessionId", &p.session_id},
                              {"version", &p.version},
                              {"release", &p.release}}) {
    auto v = params->One(name);
    if (!v) return v.error();
    *target = *v;
  }
  auto from = params->Time("fromTimestamp");
  if (!from) return from.error();
  p.from = *from;
  auto to = params->Time("toTimestamp");
  if (!to) return to.error();
  p.to = *to;
  if (p.from && p.to && *p.from > *p.to) {
    return Error::BadParameter("fromTimestamp", "fromTimestamp must not be after toTimestamp");
  }
  p.tags = params->All("tags");
  p.environments = params->All("environment");

  auto order_by = params->One("orderBy");
  if (!order_by) return order_by.error();
  if (*order_by) {
    // column[.asc|.desc]; without a direction the reference sorts descending.
    static const std::pair<std::string_view, const char*> kColumns[] = {
        {"id", "t.id"},
        {"timestamp", "t.\"timestamp\""},
        {"name", "t.name"},
        {"userId", "t.user_id"},
        {"user_id", "t.user_id"},
        {"release", "t.release"},
        {"version", "t.version"},
        {"public", "t.public"},
        {"bookmarked", "t.bookmarked"},
        {"sessionId", "t.session_id"},
        {"session_id", "t.session_id"},
        {"latency", "COALESCE(t.latency, t.obs_latency)"},
        {"totalCost", "COALESCE(t.total_cost, t.obs_total_cost)"},
        {"total_cost", "COALESCE(t.total_cost, t.obs_total_cost)"}};
    std::string_view spec = **order_by;
    while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
    while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
    const auto dot = spec.find('.');
    const std::string_view column = spec.substr(0, dot);
    const std::string_view direction =
        dot == std::string_view::npos ? "desc" : spec.substr(dot + 1);
    const char* expression = nullptr;
    for (const auto& [name, sql] : kColumns) {
      if (name == column) expression = sql;
    }
    if (expression == nullptr || (direction != "asc" && direction != "desc")) {
      return Error::BadParameter("orderBy",
                                 "orderBy must be <column>[.asc|.desc] with column one of id, "
                                 "timestamp, name, userId, release, version, public, bookmarked, "
                                 "sessionId, latency, totalCost");
    }
    p.order_column = expression;
    p.order_desc = direction == "desc";
  }

  auto fields = params->One("fields");
  if (!fields) return fields.error();
  if (*fields) {
    p.with_io = p.with_observations = p.with_metrics = false;
    std::string_view rest = **fields;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view token = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      if (token == "io") p.with_io = true;
      if (token == "observations") p.with_observations = true;
      if (token == "metrics") p.with_metrics = true;
      // `core` and `scores` change nothing (scores are always []); unknown groups are ignored.
    }
  }
  return p;
}

common::Result<common::ApiResponse> TraceQueries::List(const common::ApiRequest& request) {
  auto parsed = ParseTraceListParams(request.query);
  if (!parsed) return parsed.error();
  const TraceListParams& p = *parsed;

  // Every filter is a bound parameter; the SQL text only varies in which clauses are present.
  std::vector<Param> args = {project_id_};
  std::string where = "t.project_id = $1";
  auto add = [&](const std::string& clause, Param value) {
    args.push_back(std::move(value));
    where += " AND " + clause + std::to_string(args.size());
  };
  if (p.user_id) add("t.user_id = $", p.user_id);
  if (p.name) add("t.name = $", p.name);
  if (p.session_id) add("t.session_id = $", p.session_id);
  if (p.version) add("t.version = $", p.version);
  if (p.release) add("t.release = $", p.release);
  if (p.from) add("t.\"timestamp\" >= $", common::FormatRfc3339(*p.from));
  if (p.to) add("t.\"timestamp\" <= $", common::FormatRfc3339(*p.to));
  if (!p.tags.empty()) add("t.tags @> $", common::PgTextArrayLiteral(p.tags));
  if (!p.environments.empty()) {
    args.push_back(common::PgTextArrayLiteral(p.environments));
    where += " AND t.environment = ANY($" + std::to_string(args.size()) + "::text[])";
  }

  // Without filters beyond environment, the count is the sum of the daily rollup's per-day
  // total rows, which the projector keeps in the transactions that change the traces: exact,
  // and a few rows per day instead of a scan of every trace. Otherwise COUNT(*) over the
  // filters' index.
  const bool only_environment = !p.user_id && !p.name && !p.session_id && !p.version &&
                                !p.release && !p.from && !p.to && p.tags.empty();
  const std::string count_sql =
      only_environment ? "SELECT COALESCE(sum(count_traces), 0)::int8 FROM daily_traces t WHERE "
                         "t.dims = '{}' AND " +
                             where
                       : "SELECT count(*) FROM traces t WHERE " + where;
  const char* direction = p.order_desc ? " DESC" : " ASC";
  const std::string order = " ORDER BY " + p.order_column + direction + ", t.id" + direction;
  std::vector<Param> page_args = args;
  page_args.push_back(std::to_string(p.limit));
  page_args.push_back(std::to_string((p.page - 1) * p.limit));
  // The page's keys first, then its rows: skipping OFFSET rows then reads only the index (for
  // the default order, an index-only scan), and the full rows of just this page are fetched.
  const std::string page_sql =
      "WITH page AS MATERIALIZED (SELECT t.project_id, t.id FROM traces t WHERE " + where + order +
      " LIMIT $" + std::to_string(args.size() + 1) + "::int8 OFFSET $" +
      std::to_string(args.size() + 2) +
      "::int8) "
      "SELECT" +
      kTraceColumns +
      ", array_to_json(ARRAY(SELECT o.id::text FROM observations o"
      "        WHERE o.project_id = t.project_id AND o.trace_id = t.id"
      "        ORDER BY o.start_time NULLS LAST, o.id))::text"
      " FROM page JOIN traces t ON t.project_id = page.project_id AND t.id = page.id" +
      order;
  std::string count_key = where;
  for (const auto& a : args) count_key += '\0' + a.value_or("\x01");
  // The first page always counts (and refreshes the count); later pages reuse it.
  const std::optional<int64_t> cached_total =
      p.page > 1 ? CachedCount(count_key) : std::optional<int64_t>();

  int64_t total = 0;
  json::array data;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction txn(conn);
    total = cached_total ? *cached_total
                         : txn.exec_params1(count_sql, pqxx::prepare::make_dynamic_params(args))[0]
                               .as<int64_t>();
    for (const auto& row :
         txn.exec_params(page_sql, pqxx::prepare::make_dynamic_params(page_args))) {
      json::object item = TraceObject(row);
      // Suppressed groups, as the reference renders them.
      if (!p.with_io) {
        item.erase("input");
        item.erase("output");
        item.erase("metadata");
      }
      if (!p.with_metrics) {
        item["latency"] = -1.0;
        item["totalCost"] = -1.0;
      }
      item["observations"] = p.with_observations ? TextArray(row[20]) : json::array();
      item["scores"] = json::array();
      data.emplace_back(std::move(item));
    }
  });
  if (failed) return *failed;
  if (!cached_total) RememberCount(count_key, total);

  json::object body;
  body["data"] = std::move(data);
  body["meta"] = {{"page", p.page},
                  {"limit", p.limit},
                  {"totalItems", total},
                  {"totalPages", (total + p.limit - 1) / p.limit}};
  return common::ApiResponse::Json(common::SerializeJson(body));
}

std::optional<int64_t> TraceQueries::CachedCount(const std::string& key) {
  std::lock_guard lock(counts_mu_);
  const auto it = counts_.find(key);
  if (it == counts_.end() || std::chrono::steady_clock::now() - it->second.second > kCountReuse) {
    return std::nullopt;
  }
  return it->second.first;
}

void TraceQueries::RememberCount(const std::string& key, int64_t count) {
  std::lock_guard lock(counts_mu_);
  if (counts_.size() >= kMaxCachedCounts) counts_.clear();  // bounded; recounting is only slower
  counts_[key] = {count, std::chrono::steady_clock::now()};
}

common::Result<common::ApiResponse> TraceQueries::Get(std::string_view trace_id) {
  const auto id = common::Uuid::Parse(trace_id);
  if (!id) return Error::BadParameter("traceId", "traceId must be a UUID");
  const std::string id_text = id->ToString();

  std::optional<json::object> trace;
  json::array observations;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction txn(conn);
    // By id alone, as the reference; when two projects share an id, the default project wins.
    const auto rows =
        txn.exec_params(std::string("SELECT") + kTraceColumns +
                            " FROM traces t WHERE t.id = $1::uuid"
                            " ORDER BY (t.project_id = $2) DESC, t.project_id LIMIT 1",
                        id_text, project_id_);
    if (rows.empty()) return;
    trace = TraceObject(rows[0]);
    const std::string project = rows[0][12].c_str();
    const auto obs = txn.exec_params(
        R"sql(SELECT o.id::text, o.trace_id::text, o.type, o.name,
                 (EXTRACT(EPOCH FROM COALESCE(o.start_time, o.created_at)) * 1000000)::int8,
                 (EXTRACT(EPOCH FROM o.end_time) * 1000000)::int8,
                 (EXTRACT(EPOCH FROM o.completion_start_time) * 1000000)::int8,
                 o.model, o.model_parameters::text, o.input::text, o.metadata::text,
                 o.output::text, o.level, o.status_message, o.parent_observation_id::text,
                 o.prompt_id, o.prompt_name, o.prompt_version, o.model_id, o.input_price,
                 o.output_price, o.total_price, o.calculated_input_cost,
                 o.calculated_output_cost, o.calculated_total_cost, o.latency_d,
                 o.time_to_first_token_d, o.input_tokens_d, o.output_tokens_d, o.total_tokens_d,
                 o.unit, o.environment
          FROM observations o WHERE o.project_id = $1 AND o.trace_id = $2::uuid
          ORDER BY o.start_time ASC NULLS LAST, o.created_at ASC, o.id)sql",
        project, id_text);
    for (const auto& r : obs) {
      const auto tokens = [&](int i) { return r[i].is_null() ? int64_t{0} : r[i].as<int64_t>(); };
      const auto cost = [&](int i) { return r[i].is_null() ? 0.0 : r[i].as<double>(); };
      json::object o;
      o["id"] = r[0].c_str();
      o["traceId"] = r[1].c_str();
      o["type"] = r[2].c_str();
      o["name"] = StringOrNull(r[3]);
      o["startTime"] = TimeOf(r[4]);
      o["endTime"] = TimeOf(r[5]);
      o["completionStartTime"] = TimeOf(r[6]);
      o["model"] = StringOrNull(r[7]);
      o["modelParameters"] = r[8].is_null() ? json::value(json::object()) : JsonOrNull(r[8]);
      o["input"] = JsonOrNull(r[9]);
      o["version"] = nullptr;
      o["metadata"] = JsonOrNull(r[10]);
      o["output"] = JsonOrNull(r[11]);
      o["usage"] = {{"input", tokens(27)},
                    {"output", tokens(28)},
                    {"total", tokens(29)},
                    {"unit", StringOrNull(r[30])},
                    {"inputCost", DoubleOrNull(r[22])},
                    {"outputCost", DoubleOrNull(r[23])},
                    {"totalCost", DoubleOrNull(r[24])}};
      o["level"] = r[12].is_null() ? json::value("DEFAULT") : StringOrNull(r[12]);
      o["statusMessage"] = StringOrNull(r[13]);
      o["parentObservationId"] = StringOrNull(r[14]);
      o["promptId"] = StringOrNull(r[15]);
      o["promptName"] = StringOrNull(r[16]);
      o["promptVersion"] = PromptVersion(r[17]);
      o["modelId"] = StringOrNull(r[18]);
      o["inputPrice"] = DoubleOrNull(r[19]);
      o["outputPrice"] = DoubleOrNull(r[20]);
      o["totalPrice"] = DoubleOrNull(r[21]);
      o["calculatedInputCost"] = DoubleOrNull(r[22]);
      o["calculatedOutputCost"] = DoubleOrNull(r[23]);
      o["calculatedTotalCost"] = DoubleOrNull(r[24]);
      o["latency"] = DoubleOrNull(r[25]);
      o["timeToFirstToken"] = DoubleOrNull(r[26]);
      o["promptTokens"] = tokens(27);
      o["completionTokens"] = tokens(28);
      o["totalTokens"] = tokens(29);
      o["usageDetails"] = {{"input", tokens(27)}, {"output", tokens(28)}, {"total", tokens(29)}};
      o["costDetails"] = {{"input", cost(22)}, {"output", cost(23)}, {"total", cost(24)}};
      o["environment"] = r[31].c_str();
      observations.emplace_back(std::move(o));
    }
  });
  if (failed) return *failed;
  if (!trace) return Error{common::ErrorCode::kNotFound, "Not Found", {}};
  (*trace)["observations"] = std::move(observations);
  (*trace)["scores"] = json::array();
  return common::ApiResponse::Json(common::SerializeJson(*trace));
}

}  // namespace xtrace::query
