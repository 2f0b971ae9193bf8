#pragma once
// Metric read routes served from the projections available so far.

#include <optional>
#include <string>
#include <string_view>

#include "common/api.hpp"
#include "common/error.hpp"
#include "common/time.hpp"
#include "query/pool.hpp"

namespace xtrace::query {

class MetricQueries {
 public:
  MetricQueries(ConnectionPool& pool, std::string project_id)
      : pool_(pool), project_id_(std::move(project_id)) {}

  // GET /api/public/metrics/names: {"data":[name, ...]}, sorted, of the default environment.
  // Reads the series table (one row per series), never the points.
  common::Result<common::ApiResponse> Names();

  // GET /api/public/metrics/query: one series per label set (or per value of `group_by`),
  // one point per step bucket, read from the rollup of that step.
  common::Result<common::ApiResponse> Query(const common::ApiRequest& request,
                                            common::TimePoint now);

  // GET /api/public/metrics/daily: per UTC day with traces, newest first, from the daily usage
  // rollups. fromTimestamp/toTimestamp select whole UTC days.
  common::Result<common::ApiResponse> Daily(const common::ApiRequest& request,
                                            common::TimePoint now);

 private:
  ConnectionPool& pool_;
  const std::string project_id_;
};

enum class Aggregate { kAvg, kMax, kMin, kSum, kLast, kP50, kP90, kP99 };

struct MetricQueryParams {
  std::string name;
  common::TimePoint from, to;
  int64_t step_seconds = 60;
  Aggregate agg = Aggregate::kAvg;
  std::optional<std::string> labels_json;  // containment filter
  std::optional<std::string> group_by;
};

// Limits of one response, as the reference's (50 series, 1000 points each); truncation keeps the
// newest points. A window may span at most kMaxBuckets steps.
inline constexpr size_t kMaxSeries = 50;
inline constexpr size_t kMaxPointsPerSeries = 1000;
inline constexpr int64_t kMaxBuckets = 100000;

// Pure: parameters with the reference defaults (to = now, from = to − 1 h, step 1m, agg avg);
// errors name the parameter.
common::Result<MetricQueryParams> ParseMetricQueryParams(std::string_view query,
                                                         common::TimePoint now);

// GET /api/public/projects: the one configured project, as the reference lists it.
common::ApiResponse ProjectsResponse(const std::string& project_id, common::TimePoint now);

}  // namespace xtrace::query
