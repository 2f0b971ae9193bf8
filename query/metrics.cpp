#include "query/metrics.hpp"

#include <boost/json/value.hpp>
#include <pqxx/prepared_statement>
#include <pqxx/result>
#include <pqxx/transaction>

#include "common/json.hpp"
#include "common/pg_text.hpp"
#include "common/sketch.hpp"
#include "query/params.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <unordered_map>

namespace xtrace::query {

namespace json = boost::json;
using common::Error;

namespace {

// A token sum (NUMERIC in the rollups, so it cannot overflow): an integer while it fits in 64
// bits, beyond that the nearest double, which JSON readers take as a number all the same.
json::value UsageNumber(const pqxx::field& f) {
  const std::string_view text(f.c_str(), f.size());
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && end == text.data() + text.size()) return n;
  return std::strtod(f.c_str(), nullptr);
}

std::string Trimmed(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Labels as the series key: compact JSON with sorted keys.
std::string SortedJson(const json::object& o) {
  std::map<std::string, json::value> sorted;
  for (const auto& m : o) sorted.emplace(std::string(m.key()), m.value());
  json::object out;
  for (auto& [k, v] : sorted) out[k] = v;
  return json::serialize(out);
}

// One output point: the rollup rows (series) merged into it, with the fields its aggregate uses.
struct Cell {
  uint64_t count = 0;   // rollup rows merged
  uint64_t points = 0;  // metric points (avg, sum)
  double sum = 0, min = 0, max = 0, last = 0;
  int64_t last_us = INT64_MIN;
  common::Sketch sketch;
};

}  // namespace

common::Result<MetricQueryParams> ParseMetricQueryParams(std::string_view query,
                                                         common::TimePoint now) {
  auto params = QueryParams::Parse(query);
  if (!params) return params.error();
  MetricQueryParams p;
  auto name = params->One("name");
  if (!name) return name.error();
  if (!*name) return Error::BadParameter("name", "name is required");
  p.name = **name;
  auto to = params->Time("to");
  if (!to) return to.error();
  p.to = to->value_or(now);
  auto from = params->Time("from");
  if (!from) return from.error();
  p.from = from->value_or(p.to - std::chrono::hours(1));
  if (p.from > p.to) return Error::BadParameter("from", "from must be <= to");
  auto step = params->One("step");
  if (!step) return step.error();
  const std::string step_text = Trimmed(step->value_or("1m"));
  static const std::pair<std::string_view, int64_t> kSteps[] = {
      {"1m", 60}, {"5m", 300}, {"1h", 3600}, {"1d", 86400}};
  p.step_seconds = 0;
  for (const auto& [text, seconds] : kSteps) {
    if (text == step_text) p.step_seconds = seconds;
  }
  if (p.step_seconds == 0) {
    return Error::BadParameter("step", "invalid step, must be one of: 1m, 5m, 1h, 1d");
  }
  auto agg = params->One("agg");
  if (!agg) return agg.error();
  std::string agg_text = Trimmed(agg->value_or("avg"));
  std::transform(agg_text.begin(), agg_text.end(), agg_text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<std::string_view, Aggregate> kAggs[] = {
      {"avg", Aggregate::kAvg}, {"max", Aggregate::kMax},   {"min", Aggregate::kMin},
      {"sum", Aggregate::kSum}, {"last", Aggregate::kLast}, {"p50", Aggregate::kP50},
      {"p90", Aggregate::kP90}, {"p99", Aggregate::kP99}};
  bool known = false;
  for (const auto& [text, a] : kAggs) {
    if (text == agg_text) {
      p.agg = a;
      known = true;
    }
  }
  if (!known) {
    return Error::BadParameter(
        "agg", "invalid agg, must be one of: avg, max, min, sum, last, p50, p90, p99");
  }
  auto labels = params->One("labels");
  if (!labels) return labels.error();
  if (*labels && !Trimmed(**labels).empty()) {
    boost::system::error_code ec;
    const auto parsed = common::ParseJson(**labels, ec);
    if (ec) return Error::BadParameter("labels", "invalid labels json: " + ec.message());
    p.labels_json = json::serialize(parsed);
  }
  auto group_by = params->One("group_by");
  if (!group_by) return group_by.error();
  if (*group_by) {
    if (group_by->value().empty()) return Error::BadParameter("group_by", "group_by is empty");
    p.group_by = **group_by;
  }
  const int64_t window_s = std::chrono::duration_cast<std::chrono::seconds>(p.to - p.from).count();
  if (window_s / p.step_seconds > kMaxBuckets) {
    return Error::BadParameter("from", "the window spans more than " + std::to_string(kMaxBuckets) +
                                           " steps; use a larger step or a shorter window");
  }
  return p;
}

common::Result<common::ApiResponse> MetricQueries::Query(const common::ApiRequest& request,
                                                         common::TimePoint now) {
  auto parsed = ParseMetricQueryParams(request.query, now);
  if (!parsed) return parsed.error();
  const MetricQueryParams& p = *parsed;
  // Buckets whose start lies in [from floored to the step, to].
  const int64_t from_us = p.from.time_since_epoch().count();
  const int64_t step_us = p.step_seconds * 1000000;
  const int64_t first_bucket_us =
      (from_us >= 0 ? from_us / step_us : (from_us - step_us + 1) / step_us) * step_us;

  // A group's labels and its cells by bucket start (µs); groups by their sorted-JSON key.
  // std::map keeps series and buckets ordered.
  using Group = std::pair<json::object, std::map<int64_t, Cell>>;
  std::map<std::string, Group> groups;
  int64_t latest_us = INT64_MIN;
  bool truncated = false;
  // Bounded work: at most the newest kMaxRows rollup rows are read.
  constexpr int kMaxRows = 200000;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction txn(conn);
    // The matching series and their labels first, then their rollup rows by id: the labels are
    // rendered and parsed once per series, not once per bucket. A series' group is made on its
    // first row, so series without data in the window neither show up nor count against the
    // series limit.
    struct SeriesGroup {
      json::object key_labels;
      Group* group = nullptr;
    };
    std::unordered_map<int64_t, SeriesGroup> group_of;
    std::vector<std::string> ids;
    for (const auto& s : txn.exec_params(
             "SELECT id, labels::text FROM metric_series WHERE project_id = $1 AND "
             "environment = 'default' AND name = $2 AND ($3::jsonb IS NULL OR labels @> $3::jsonb)",
             project_id_, p.name, p.labels_json)) {
      const json::object labels = common::ParseJson(s[1].c_str()).as_object();
      json::object key_labels;
      if (p.group_by) {
        const auto* v = labels.if_contains(*p.group_by);
        key_labels[*p.group_by] = v != nullptr ? *v : json::value(nullptr);
      } else {
        key_labels = labels;
      }
      group_of[s[0].as<int64_t>()].key_labels = std::move(key_labels);
      ids.emplace_back(s[0].c_str());
    }
    if (ids.empty()) return;
    const int64_t buckets = (p.to.time_since_epoch().count() - first_bucket_us) / step_us + 1;
    const bool bounded = static_cast<int64_t>(ids.size()) * buckets <= kMaxRows;
    // Only the columns the aggregate needs, and bucket starts as float8 epoch seconds (cheap to
    // render, exact for whole seconds): a 30-day hourly query reads ~100k rows, and rendering
    // them is most of its cost. The last value's time keeps its microseconds (numeric EXTRACT).
    const char* columns = "";
    switch (p.agg) {
      case Aggregate::kAvg:
      case Aggregate::kSum: columns = "r.count, r.sum"; break;
      case Aggregate::kMax: columns = "r.max"; break;
      case Aggregate::kMin: columns = "r.min"; break;
      case Aggregate::kLast:
        columns = "r.last, (EXTRACT(EPOCH FROM r.last_ts) * 1000000)::int8";
        break;
      case Aggregate::kP50:
      case Aggregate::kP90:
      case Aggregate::kP99: columns = "r.sketch"; break;
    }
    const std::string sql =
        std::string("SELECT r.series_id, date_part('epoch', r.bucket)::int8, ") + columns + R"sql(
FROM metric_rollups r
WHERE r.series_id = ANY($1::int8[]) AND r.step = $2
  AND r.bucket >= $3::timestamptz AND r.bucket <= $4::timestamptz)sql";
    const std::string id_array = common::PgTextArrayLiteral(ids);
    const std::string from_text =
        common::FormatRfc3339(common::TimePoint(common::Micros(first_bucket_us)));
    const std::string to_text = common::FormatRfc3339(p.to);
    // Only when the window could hold more rows than the bound does the newest-first order
    // matter; otherwise the sort is skipped.
    const auto rows = bounded ? txn.exec_params(sql, id_array, p.step_seconds, from_text, to_text)
                              : txn.exec_params(sql + " ORDER BY r.bucket DESC LIMIT $5", id_array,
                                                p.step_seconds, from_text, to_text, kMaxRows + 1);
    if (rows.size() > static_cast<size_t>(kMaxRows)) truncated = true;
    const auto number = [](const pqxx::field& f) { return std::string_view(f.c_str(), f.size()); };
    size_t n = 0;
    std::string bytes;
    for (const auto& row : rows) {
      if (++n > static_cast<size_t>(kMaxRows)) break;
      SeriesGroup& series = group_of.at(common::ParsePgNumber<int64_t>(number(row[0])));
      if (series.group == nullptr) {
        series.group = &groups[SortedJson(series.key_labels)];
        if (series.group->first.empty()) series.group->first = series.key_labels;
      }
      const int64_t bucket = common::ParsePgNumber<int64_t>(number(row[1])) * 1000000;
      latest_us = std::max(latest_us, bucket);
      Cell& cell = series.group->second[bucket];
      const bool first = cell.count == 0;
      ++cell.count;  // rows merged; the point count matters to avg only, added below
      switch (p.agg) {
        case Aggregate::kAvg:
        case Aggregate::kSum:
          cell.points += common::ParsePgNumber<uint64_t>(number(row[2]));
          cell.sum += common::ParsePgNumber<double>(number(row[3]));
          break;
        case Aggregate::kMax: {
          const double v = common::ParsePgNumber<double>(number(row[2]));
          cell.max = first ? v : std::max(cell.max, v);
          break;
        }
        case Aggregate::kMin: {
          const double v = common::ParsePgNumber<double>(number(row[2]));
          cell.min = first ? v : std::min(cell.min, v);
          break;
        }
        case Aggregate::kLast:
          if (const auto last_us = common::ParsePgNumber<int64_t>(number(row[3]));
              last_us > cell.last_us) {
            cell.last_us = last_us;
            cell.last = common::ParsePgNumber<double>(number(row[2]));
          }
          break;
        case Aggregate::kP50:
        case Aggregate::kP90:
        case Aggregate::kP99:
          if (!common::DecodeByteaHex(row[2].c_str(), bytes) || !cell.sketch.MergeEncoded(bytes)) {
            throw std::runtime_error("metric_rollups holds a sketch this build cannot read");
          }
          break;
      }
    }
  });
  if (failed) return *failed;

  json::array data;
  for (auto& [key, group] : groups) {
    if (data.size() == kMaxSeries) {
      truncated = true;
      break;
    }
    auto& buckets = group.second;
    if (buckets.size() > kMaxPointsPerSeries) {
      truncated = true;  // keep the newest
      buckets.erase(buckets.begin(),
                    std::next(buckets.begin(),
                              static_cast<std::ptrdiff_t>(buckets.size() - kMaxPointsPerSeries)));
    }
    json::array values;
    for (const auto& [bucket, cell] : buckets) {
      double value = 0;
      switch (p.agg) {
        case Aggregate::kAvg: value = cell.sum / static_cast<double>(cell.points); break;
        case Aggregate::kMax: value = cell.max; break;
        case Aggregate::kMin: value = cell.min; break;
        case Aggregate::kSum: value = cell.sum; break;
        case Aggregate::kLast: value = cell.last; break;
        case Aggregate::kP50: value = cell.sketch.Quantile(0.5); break;
        case Aggregate::kP90: value = cell.sketch.Quantile(0.9); break;
        case Aggregate::kP99: value = cell.sketch.Quantile(0.99); break;
      }
      values.emplace_back(json::object{
          {"timestamp", common::FormatRfc3339Offset(common::TimePoint(common::Micros(bucket)))},
          {"value", value}});
    }
    data.emplace_back(json::object{{"labels", group.first}, {"values", std::move(values)}});
  }
  json::object meta;
  if (latest_us != INT64_MIN) {
    meta["latest_ts"] = common::FormatRfc3339Offset(common::TimePoint(common::Micros(latest_us)));
  }
  meta["series_count"] = data.size();
  meta["truncated"] = truncated;
  json::object body;
  body["data"] = std::move(data);
  body["meta"] = std::move(meta);
  return common::ApiResponse::Json(common::SerializeJson(body));
}

common::Result<common::ApiResponse> MetricQueries::Names() {
  json::array names;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction txn(conn);
    for (const auto& row :
         txn.exec_params("SELECT DISTINCT name FROM metric_series WHERE project_id = $1 "
                         "AND environment = 'default' ORDER BY name",
                         project_id_)) {
      names.emplace_back(json::string(row[0].c_str()));
    }
  });
  if (failed) return *failed;
  json::object body;
  body["data"] = std::move(names);
  return common::ApiResponse::Json(common::SerializeJson(body));
}

common::Result<common::ApiResponse> MetricQueries::Daily(const common::ApiRequest& request,
                                                         common::TimePoint now) {
  auto params = QueryParams::Parse(request.query);
  if (!params) return params.error();
  auto page = params->Integer("page");
  if (!page) return page.error();
  const int64_t page_no = std::max<int64_t>(1, page->value_or(1));
  if (page_no > 10'000'000) return Error::BadParameter("page", "page must be at most 10000000");
  auto limit_param = params->Integer("limit");
  if (!limit_param) return limit_param.error();
  const int64_t limit = std::clamp<int64_t>(limit_param->value_or(50), 1, 200);
  auto to = params->Time("toTimestamp");
  if (!to) return to.error();
  const common::TimePoint to_time = to->value_or(now);
  auto from = params->Time("fromTimestamp");
  if (!from) return from.error();
  const common::TimePoint from_time = from->value_or(to_time - std::chrono::hours(24 * 30));
  if (from_time > to_time) {
    return Error::BadParameter("fromTimestamp", "fromTimestamp must not be after toTimestamp");
  }

  // Filters on the rollups' dims; every value is a bound parameter.
  std::vector<std::optional<std::string>> args = {project_id_, common::FormatRfc3339(from_time),
                                                  common::FormatRfc3339(to_time)};
  std::string where =
      "project_id = $1 AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date"
      " AND day <= ($3::timestamptz AT TIME ZONE 'UTC')::date";
  bool dims_filtered = false;
  for (auto [param, key] : {std::pair{"traceName", "name"},
                            {"userId", "userId"},
                            {"version", "version"},
                            {"release", "release"}}) {
    auto v = params->One(param);
    if (!v) return v.error();
    if (*v) {
      args.push_back(**v);
      where += std::string(" AND dims->>'") + key + "' = $" + std::to_string(args.size());
      dims_filtered = true;
    }
  }
  if (const auto tags = params->All("tags"); !tags.empty()) {
    json::array list;
    for (const auto& t : tags) list.emplace_back(json::string(t));
    args.push_back(json::serialize(json::object{{"tags", list}}));
    where += " AND dims @> $" + std::to_string(args.size()) + "::jsonb";
    dims_filtered = true;
  }
  if (const auto envs = params->All("environment"); !envs.empty()) {
    args.push_back(common::PgTextArrayLiteral(envs));
    where += " AND environment = ANY($" + std::to_string(args.size()) + "::text[])";
  }
  // Without a filter on the traces' dimensions, the days' total rows answer (a few per day);
  // with one, the per-dimension rows, which exclude the totals.
  where += dims_filtered ? " AND dims <> '{}'" : " AND dims = '{}'";

  int64_t total = 0;
  json::array data;
  auto failed = pool_.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction txn(conn);
    const std::string days_sql =
        "SELECT day::text, sum(count_traces)::int8, sum(count_observations)::int8, "
        "sum(total_cost) FROM daily_traces WHERE " +
        where + " GROUP BY day HAVING sum(count_traces) > 0";
    total = txn.exec_params1("SELECT count(*) FROM (" + days_sql + ") AS d",
                             pqxx::prepare::make_dynamic_params(args))[0]
                .as<int64_t>();
    auto page_args = args;
    page_args.push_back(std::to_string(limit));
    page_args.push_back(std::to_string((page_no - 1) * limit));
    const auto days =
        txn.exec_params(days_sql + " ORDER BY day DESC LIMIT $" + std::to_string(args.size() + 1) +
                            "::int8 OFFSET $" + std::to_string(args.size() + 2) + "::int8",
                        pqxx::prepare::make_dynamic_params(page_args));
    if (days.empty()) return;
    std::vector<std::string> day_list;
    for (const auto& d : days) day_list.emplace_back(d[0].c_str());
    auto model_args = args;
    model_args.push_back(common::PgTextArrayLiteral(day_list));
    std::map<std::string, json::array> usage_by_day;
    for (const auto& m : txn.exec_params(
             "SELECT day::text, model, sum(count_traces)::int8, sum(count_observations)::int8, "
             "sum(input_usage), sum(output_usage), sum(total_usage), "
             "sum(total_cost) FROM daily_models WHERE " +
                 where + " AND day = ANY($" + std::to_string(model_args.size()) +
                 "::date[]) GROUP BY day, model HAVING sum(count_traces) > 0 "
                 "ORDER BY day, sum(total_cost) DESC, model",
             pqxx::prepare::make_dynamic_params(model_args))) {
      // Keys in the reference's (alphabetical) order.
      usage_by_day[m[0].c_str()].emplace_back(
          json::object{{"countObservations", m[3].as<int64_t>()},
                       {"countTraces", m[2].as<int64_t>()},
                       {"inputUsage", UsageNumber(m[4])},
                       {"model", m[1].c_str()},
                       {"outputUsage", UsageNumber(m[5])},
                       {"totalCost", m[7].as<double>()},
                       {"totalUsage", UsageNumber(m[6])}});
    }
    for (const auto& d : days) {
      json::object item;
      item["date"] = d[0].c_str();
      item["countTraces"] = d[1].as<int64_t>();
      item["countObservations"] = d[2].as<int64_t>();
      item["totalCost"] = d[3].as<double>();
      item["usage"] = std::move(usage_by_day[d[0].c_str()]);
      data.emplace_back(std::move(item));
    }
  });
  if (failed) return *failed;
  json::object body;
  body["data"] = std::move(data);
  body["meta"] = {{"page", page_no},
                  {"limit", limit},
                  {"totalItems", total},
                  {"totalPages", (total + limit - 1) / limit}};
  return common::ApiResponse::Json(common::SerializeJson(body));
}

common::ApiResponse ProjectsResponse(const std::string& project_id, common::TimePoint now) {
  // The reference renders these timestamps with a +00:00 offset rather than Z.
  const std::string stamp = common::FormatRfc3339Offset(now);
  json::object project{{"id", project_id},
                       {"name", project_id},
                       {"createdAt", stamp},
                       {"updatedAt", stamp},
                       {"metadata", json::object()}};
  json::object body;
  body["data"] = json::array{project};
  return common::ApiResponse::Json(common::SerializeJson(body));
}

}  // namespace xtrace::query
