#include "support/projection_dump.hpp"

#include <pqxx/pqxx>

namespace xtrace::testing {

std::string DumpProjections(const std::string& database_url) {
  pqxx::connection conn(database_url);
  pqxx::work txn(conn);
  std::string dump;
  for (const char* query :
       {"SELECT to_jsonb(x) - 'updated_at' - 'created_at' FROM traces x ORDER BY project_id, id",
        "SELECT to_jsonb(x) - 'updated_at' - 'created_at' FROM observations x "
        "ORDER BY project_id, id",
        "SELECT jsonb_build_array(s.project_id, s.environment, s.name, s.labels, p.ts, p.value) "
        "FROM metric_points p JOIN metric_series s ON s.id = p.series_id "
        "ORDER BY s.name, s.labels::text, p.ts",
        "SELECT jsonb_build_array(s.name, s.labels, r.step, r.bucket, r.count, r.sum, r.min, r.max,"
        " r.last, r.last_ts, r.sketch) FROM metric_rollups r JOIN metric_series s ON s.id = "
        "r.series_id"
        " ORDER BY s.name, s.labels::text, r.step, r.bucket",
        "SELECT to_jsonb(x) FROM trace_usage x ORDER BY project_id, trace_id",
        "SELECT to_jsonb(x) FROM trace_model_usage x ORDER BY project_id, trace_id, model",
        // Every row: cells the traces left must be gone, as a rebuild never writes them.
        "SELECT to_jsonb(x) FROM daily_traces x ORDER BY project_id, environment, day, dims::text",
        "SELECT to_jsonb(x) FROM daily_models x"
        " ORDER BY project_id, environment, day, dims::text, model"}) {
    for (const auto& row : txn.exec(query)) dump += std::string(row[0].c_str()) + "\n";
  }
  return dump;
}

}  // namespace xtrace::testing
