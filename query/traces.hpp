#pragma once
// GET /api/public/traces and GET /api/public/traces/{traceId}, in the reference's JSON shapes.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/api.hpp"
#include "common/error.hpp"
#include "common/time.hpp"
#include "query/pool.hpp"

namespace xtrace::query {

struct TraceListParams {
  int64_t page = 1;    // values below 1 become 1
  int64_t limit = 50;  // clamped to [1, 200]
  std::optional<std::string> user_id, name, session_id, version, release;
  std::optional<common::TimePoint> from, to;
  std::vector<std::string> tags;          // all of
  std::vector<std::string> environments;  // any of
  // ORDER BY: a whitelisted column expression and its direction; `t.id` in the same direction
  // breaks ties, so pages never overlap or skip.
  std::string order_column = "t.\"timestamp\"";
  bool order_desc = true;
  // Response groups (`fields`): when the parameter is absent every group is included.
  bool with_io = true;
  bool with_observations = true;
  bool with_metrics = true;
};

// Pure: parses and normalizes the list parameters; errors name the parameter.
common::Result<TraceListParams> ParseTraceListParams(std::string_view query);

class TraceQueries {
 public:
  TraceQueries(ConnectionPool& pool, std::string project_id)
      : pool_(pool), project_id_(std::move(project_id)) {}

  common::Result<common::ApiResponse> List(const common::ApiRequest& request);
  common::Result<common::ApiResponse> Get(std::string_view trace_id);

 private:
  // totalItems is exact (COUNT(*), or the daily totals when only environment filters). The
  // first page of a filter set always counts; later pages reuse that count for up to
  // kCountReuse, so paging through a large filtered listing counts once, not once per page.
  static constexpr std::chrono::milliseconds kCountReuse{5000};
  static constexpr size_t kMaxCachedCounts = 1024;
  std::optional<int64_t> CachedCount(const std::string& key);
  void RememberCount(const std::string& key, int64_t count);

  ConnectionPool& pool_;
  const std::string project_id_;
  std::mutex counts_mu_;
  std::unordered_map<std::string, std::pair<int64_t, std::chrono::steady_clock::time_point>>
      counts_;
};

}  // namespace xtrace::query
