#include "query/metrics.hpp"

#include <boost/json/value.hpp>
#include <pqxx/result>
#include <pqxx/transaction>

#include "common/json.hpp"

namespace xtrace::query {

namespace json = boost::json;

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

common::ApiResponse ProjectsResponse(const std::string& project_id, common::TimePoint now) {
  // The reference renders these timestamps with a +00:00 offset rather than Z.
  std::string stamp = common::FormatRfc3339(now);
  stamp.back() = '+';
  stamp += "00:00";
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
