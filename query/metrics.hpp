#pragma once
// Metric read routes served from the projections available so far.

#include <string>

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

 private:
  ConnectionPool& pool_;
  const std::string project_id_;
};

// GET /api/public/projects: the one configured project, as the reference lists it.
common::ApiResponse ProjectsResponse(const std::string& project_id, common::TimePoint now);

}  // namespace xtrace::query
