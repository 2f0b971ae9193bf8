#include "query/traces.hpp"

#include <malloc.h>
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
#include "schema/events.hpp"

namespace xtrace::query {
namespace {

using common::Error;
using common::JsonWriter;
using common::ParsePgNumber;
using Param = std::optional<std::string>;

// Columns shared by the list and the detail, in the order WriteTraceMembers() reads them.
constexpr char kTraceColumns[] = R"sql(
  t.id::text, (EXTRACT(EPOCH FROM t."timestamp") * 1000000)::int8, t.name, t.input::text,
  t.output::text, t.session_id, t.release, t.version, t.user_id, t.metadata::text,
  array_to_json(t.tags)::text,
  t.public, t.project_id, t.external_id, t.bookmarked, t.environment,
  COALESCE(t.latency, t.obs_latency), COALESCE(t.total_cost, t.obs_total_cost),
  (EXTRACT(EPOCH FROM t.created_at) * 1000000)::int8,
  (EXTRACT(EPOCH FROM t.updated_at) * 1000000)::int8)sql";

// Rows fetched per round trip. A trace detail reads its observations in batches of this many,
// a list page its traces: the server holds one batch of the result at a time, not all of it,
// however many observations a trace has. List rows carry the trace's input and output, so
// they come in smaller batches.
constexpr int kObservationBatch = 500;
constexpr int kTraceBatch = 32;

// Past this size a rendered response has left enough freed memory behind (result batches, the
// smaller buffers the text grew through) that it is handed back to the operating system at once;
// glibc would otherwise keep it in the arena of whichever pool thread rendered the response.
constexpr size_t kReleaseMemoryAfterBytes = size_t{8} << 20;

std::string_view Text(const pqxx::field& f) {
  return {f.c_str(), f.size()};
}

// Runs `sql` as a cursor and hands its rows to `each`, `batch` rows per FETCH.
template <class Each>
void ForEachRow(pqxx::transaction_base& txn, const std::string& sql, const std::vector<Param>& args,
                int batch, Each&& each) {
  txn.exec_params0("DECLARE xtrace_rows NO SCROLL CURSOR FOR " + sql,
                   pqxx::prepare::make_dynamic_params(args));
  const std::string fetch = "FETCH FORWARD " + std::to_string(batch) + " FROM xtrace_rows";
  for (;;) {
    const pqxx::result rows = txn.exec(fetch);
    for (const auto& row : rows) each(row);
    if (rows.size() < static_cast<pqxx::result::size_type>(batch)) break;
  }
  txn.exec0("CLOSE xtrace_rows");
}

void ReleaseFreedMemory(const std::string& body) {
  if (body.size() >= kReleaseMemoryAfterBytes) malloc_trim(0);
}

// Field writers: a column of the row as the reference renders it, null when the column is.

// Stored JSON (jsonb::text, always valid JSON) goes out as text, never parsed.
void WriteJson(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) return w.Null();
  w.Json(Text(f));
}

void WriteString(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) return w.Null();
  w.String(Text(f));
}

void WriteDouble(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) return w.Null();
  w.Double(ParsePgNumber<double>(Text(f)));
}

int64_t IntOrZero(const pqxx::field& f) {
  return f.is_null() ? 0 : ParsePgNumber<int64_t>(Text(f));
}

double DoubleOrZero(const pqxx::field& f) {
  return f.is_null() ? 0.0 : ParsePgNumber<double>(Text(f));
}

// Microseconds since the epoch (see the columns) as RFC 3339.
void WriteTime(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) return w.Null();
  w.String(
      common::FormatRfc3339(common::TimePoint(common::Micros(ParsePgNumber<int64_t>(Text(f))))));
}

// The reference renders prompt versions as numbers; a version that is not an integer is null.
void WritePromptVersion(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) return w.Null();
  const std::string_view s = Text(f);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return w.Null();
  w.Int(n);
}

// A text[] the query read as JSON (array_to_json); [] for NULL. libpqxx 6.4's array parser also
// splits unquoted elements at ';' (PostgreSQL quotes only its ',' delimiter), which cut tags like
// "a;b" in two, so arrays never go through it.
void WriteTextArray(JsonWriter& w, const pqxx::field& f) {
  if (f.is_null()) {
    w.BeginArray();
    w.EndArray();
    return;
  }
  w.Json(Text(f));
}

// One trace row's members in the reference key order (kTraceColumns); callers add
// `observations` and `scores`. Suppressed groups of the list (`fields`) leave out input, output
// and metadata, and render the metrics as -1, as the reference does.
void WriteTraceMembers(JsonWriter& w, const pqxx::row& r, bool with_io, bool with_metrics) {
  const std::string_view id = Text(r[0]);
  const std::string_view project = Text(r[12]);
  w.Key("id");
  w.String(id);
  w.Key("timestamp");
  WriteTime(w, r[1]);
  w.Key("name");
  WriteString(w, r[2]);
  if (with_io) {
    w.Key("input");
    WriteJson(w, r[3]);
    w.Key("output");
    WriteJson(w, r[4]);
  }
  w.Key("sessionId");
  WriteString(w, r[5]);
  w.Key("release");
  WriteString(w, r[6]);
  w.Key("version");
  WriteString(w, r[7]);
  w.Key("userId");
  WriteString(w, r[8]);
  if (with_io) {
    w.Key("metadata");
    WriteJson(w, r[9]);
  }
  w.Key("tags");
  WriteTextArray(w, r[10]);
  w.Key("public");
  w.Bool(r[11].as<bool>());
  w.Key("projectId");
  w.String(project);
  w.Key("externalId");
  WriteString(w, r[13]);
  w.Key("bookmarked");
  w.Bool(r[14].as<bool>());
  w.Key("environment");
  w.String(Text(r[15]));
  w.Key("htmlPath");
  w.String("/project/" + std::string(project) + "/traces/" + std::string(id));
  w.Key("latency");
  if (with_metrics) {
    WriteDouble(w, r[16]);
  } else {
    w.Double(-1.0);
  }
  w.Key("totalCost");
  if (with_metrics) {
    WriteDouble(w, r[17]);
  } else {
    w.Double(-1.0);
  }
  w.Key("createdAt");
  WriteTime(w, r[18]);
  w.Key("updatedAt");
  WriteTime(w, r[19]);
}

// The detail's observation columns, in the order WriteObservation() reads them.
constexpr char kObservationSql[] = R"sql(
  SELECT o.id::text, o.trace_id::text, o.type, o.name,
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
  FROM observations o WHERE o.project_id = $1 AND o.trace_id = $2
  ORDER BY o.start_time ASC NULLS LAST, o.created_at ASC, o.id)sql";

void WriteObservation(JsonWriter& w, const pqxx::row& r) {
  const int64_t input_tokens = IntOrZero(r[27]);
  const int64_t output_tokens = IntOrZero(r[28]);
  const int64_t total_tokens = IntOrZero(r[29]);
  w.BeginObject();
  w.Key("id");
  w.String(Text(r[0]));
  w.Key("traceId");
  w.String(Text(r[1]));
  w.Key("type");
  w.String(Text(r[2]));
  w.Key("name");
  WriteString(w, r[3]);
  w.Key("startTime");
  WriteTime(w, r[4]);
  w.Key("endTime");
  WriteTime(w, r[5]);
  w.Key("completionStartTime");
  WriteTime(w, r[6]);
  w.Key("model");
  WriteString(w, r[7]);
  w.Key("modelParameters");
  if (r[8].is_null()) {
    w.BeginObject();
    w.EndObject();
  } else {
    WriteJson(w, r[8]);
  }
  w.Key("input");
  WriteJson(w, r[9]);
  w.Key("version");
  w.Null();
  w.Key("metadata");
  WriteJson(w, r[10]);
  w.Key("output");
  WriteJson(w, r[11]);
  w.Key("usage");
  w.BeginObject();
  w.Key("input");
  w.Int(input_tokens);
  w.Key("output");
  w.Int(output_tokens);
  w.Key("total");
  w.Int(total_tokens);
  w.Key("unit");
  WriteString(w, r[30]);
  w.Key("inputCost");
  WriteDouble(w, r[22]);
  w.Key("outputCost");
  WriteDouble(w, r[23]);
  w.Key("totalCost");
  WriteDouble(w, r[24]);
  w.EndObject();
  w.Key("level");
  if (r[12].is_null()) {
    w.String("DEFAULT");
  } else {
    w.String(Text(r[12]));
  }
  w.Key("statusMessage");
  WriteString(w, r[13]);
  w.Key("parentObservationId");
  WriteString(w, r[14]);
  w.Key("promptId");
  WriteString(w, r[15]);
  w.Key("promptName");
  WriteString(w, r[16]);
  w.Key("promptVersion");
  WritePromptVersion(w, r[17]);
  w.Key("modelId");
  WriteString(w, r[18]);
  w.Key("inputPrice");
  WriteDouble(w, r[19]);
  w.Key("outputPrice");
  WriteDouble(w, r[20]);
  w.Key("totalPrice");
  WriteDouble(w, r[21]);
  w.Key("calculatedInputCost");
  WriteDouble(w, r[22]);
  w.Key("calculatedOutputCost");
  WriteDouble(w, r[23]);
  w.Key("calculatedTotalCost");
  WriteDouble(w, r[24]);
  w.Key("latency");
  WriteDouble(w, r[25]);
  w.Key("timeToFirstToken");
  WriteDouble(w, r[26]);
  w.Key("promptTokens");
  w.Int(input_tokens);
  w.Key("completionTokens");
  w.Int(output_tokens);
  w.Key("totalTokens");
  w.Int(total_tokens);
  w.Key("usageDetails");
  w.BeginObject();
  w.Key("input");
  w.Int(input_tokens);
  w.Key("output");
  w.Int(output_tokens);
  w.Key("total");
  w.Int(total_tokens);
  w.EndObject();
  w.Key("costDetails");
  w.BeginObject();
  w.Key("input");
  w.Double(DoubleOrZero(r[22]));
  w.Key("output");
  w.Double(DoubleOrZero(r[23]));
  w.Key("total");
  w.Double(DoubleOrZero(r[24]));
  w.EndObject();
  w.Key("environment");
  w.String(Text(r[31]));
  w.EndObject();
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
      (p.with_observations ? ", array_to_json(ARRAY(SELECT o.id::text FROM observations o"
                             "        WHERE o.project_id = t.project_id AND o.trace_id = t.id"
                             "        ORDER BY o.start_time NULLS LAST, o.id))::text"
                           : ", NULL::text") +
      " FROM page JOIN traces t ON t.project_id = page.project_id AND t.id = page.id" + order;
  std::string count_key = where;
  for (const auto& a : args) count_key += '\0' + a.value_or("\x01");
  // The first page always counts (and refreshes the count); later pages reuse it.
  const std::optional<int64_t> cached_total =
      p.page > 1 ? CachedCount(count_key) : std::optional<int64_t>();

  int64_t total = 0;
  std::string body;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    body.clear();
    pqxx::read_transaction txn(conn);
    total = cached_total ? *cached_total
                         : txn.exec_params1(count_sql, pqxx::prepare::make_dynamic_params(args))[0]
                               .as<int64_t>();
    JsonWriter w(body);
    w.BeginObject();
    w.Key("data");
    w.BeginArray();
    ForEachRow(txn, page_sql, page_args, kTraceBatch, [&](const pqxx::row& row) {
      w.BeginObject();
      WriteTraceMembers(w, row, p.with_io, p.with_metrics);
      w.Key("observations");
      WriteTextArray(w, row[20]);  // NULL, hence [], when the group is suppressed
      w.Key("scores");
      w.BeginArray();
      w.EndArray();
      w.EndObject();
    });
    w.EndArray();
    w.Key("meta");
    w.BeginObject();
    w.Key("page");
    w.Int(p.page);
    w.Key("limit");
    w.Int(p.limit);
    w.Key("totalItems");
    w.Int(total);
    w.Key("totalPages");
    w.Int((total + p.limit - 1) / p.limit);
    w.EndObject();
    w.EndObject();
  });
  if (failed) return *failed;
  if (!cached_total) RememberCount(count_key, total);
  ReleaseFreedMemory(body);
  return common::ApiResponse::Json(std::move(body));
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
  // Ids are opaque text. One that reads as a UUID in any spelling the xtrace route accepts
  // (any case, with or without hyphens) is also looked up in the canonical form that route
  // stores; the id exactly as given comes first, for a client that chose such a string itself.
  if (trace_id.empty() || trace_id.size() > schema::kMaxIdBytes ||
      trace_id.find('\0') != std::string_view::npos) {
    return Error::BadParameter(
        "traceId",
        "traceId must be 1 to " + std::to_string(schema::kMaxIdBytes) + " bytes, without NUL");
  }
  const std::string given(trace_id);
  const auto uuid = common::Uuid::Parse(trace_id);
  const std::string canonical = uuid ? uuid->ToString() : given;

  // Rendered straight into the response text while the observations are fetched in batches
  // through a cursor: a trace with any number of observations is held once, as its text.
  std::string body;
  bool found = false;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    body.clear();
    pqxx::read_transaction txn(conn);
    // By id alone, as the reference; when two projects share an id, the default project wins.
    const auto rows =
        txn.exec_params(std::string("SELECT") + kTraceColumns +
                            " FROM traces t WHERE t.id IN ($1, $2)"
                            " ORDER BY (t.project_id = $3) DESC, t.project_id, t.id <> $1 LIMIT 1",
                        given, canonical, project_id_);
    if (rows.empty()) return;
    found = true;
    JsonWriter w(body);
    w.BeginObject();
    WriteTraceMembers(w, rows[0], true, true);
    w.Key("observations");
    w.BeginArray();
    ForEachRow(txn, kObservationSql, {rows[0][12].c_str(), rows[0][0].c_str()}, kObservationBatch,
               [&](const pqxx::row& r) { WriteObservation(w, r); });
    w.EndArray();
    w.Key("scores");
    w.BeginArray();
    w.EndArray();
    w.EndObject();
  });
  if (failed) return *failed;
  if (!found) return Error{common::ErrorCode::kNotFound, "Not Found", {}};
  ReleaseFreedMemory(body);
  return common::ApiResponse::Json(std::move(body));
}

}  // namespace xtrace::query
