#include "projector/derived.hpp"

#include <pqxx/result>

#include <string>
#include <string_view>
#include <vector>

#include "common/pg_text.hpp"
#include "projector/sql.hpp"

namespace xtrace::projector {

uint64_t RefreshAllTraces(pqxx::connection& conn, size_t page) {
  {
    // From scratch: a trace's refresh subtracts its stored contribution and adds the fresh one,
    // so rows that were never maintained (a bulk load) or drifted are made exact again.
    pqxx::work txn(conn);
    txn.exec0("TRUNCATE trace_usage, trace_model_usage, daily_traces, daily_models");
    txn.commit();
  }
  uint64_t total = 0;
  std::string after_project, after_id;  // "" sorts first: the ids are text in collation "C"
  for (;;) {
    pqxx::work txn(conn);
    std::set<TraceKey> keys;
    const pqxx::result rows = txn.exec_params(
        "SELECT project_id, id FROM traces WHERE (project_id, id) > ($1, $2) "
        "ORDER BY project_id, id LIMIT $3",
        after_project, after_id, page);
    const auto project_id = rows.column_number("project_id");
    const auto id = rows.column_number("id");
    for (const auto& row : rows) {
      keys.insert({row[project_id].c_str(), row[id].c_str()});
      after_project = row[project_id].c_str();
      after_id = row[id].c_str();
    }
    if (keys.empty()) break;
    RefreshTraceAggregates(txn, keys);
    txn.commit();
    total += keys.size();
  }
  return total;
}

void RefreshTraceAggregates(pqxx::work& txn, const std::set<TraceKey>& traces) {
  if (traces.empty()) return;
  std::vector<std::string> projects, ids;
  for (const auto& k : traces) {
    projects.push_back(k.project_id);
    ids.push_back(k.trace_id);
  }
  const auto project_array = common::PgTextArrayLiteral(projects);
  const auto id_array = common::PgTextArrayLiteral(ids);
  const pqxx::result empty = txn.exec_prepared(sql::kRefreshDerived.name, project_array, id_array);
  if (empty.empty()) return;  // the usual case: no cell emptied
  struct Cells {
    std::vector<std::string> project, environment, day, dims, model;
  } cells[2];  // traces, models
  const auto rollup = empty.column_number("rollup");
  const auto project_id = empty.column_number("project_id");
  const auto environment = empty.column_number("environment");
  const auto day = empty.column_number("day");
  const auto dims = empty.column_number("dims");
  const auto model = empty.column_number("model");
  for (const auto& row : empty) {
    Cells& c = cells[std::string_view(row[rollup].c_str()) == "traces" ? 0 : 1];
    c.project.emplace_back(row[project_id].c_str());
    c.environment.emplace_back(row[environment].c_str());
    c.day.emplace_back(row[day].c_str());
    c.dims.emplace_back(row[dims].c_str());
    if (!row[model].is_null()) c.model.emplace_back(row[model].c_str());
  }
  using common::PgTextArrayLiteral;
  if (!cells[0].project.empty()) {
    txn.exec_prepared(sql::kDropEmptyDailyTraces.name, PgTextArrayLiteral(cells[0].project),
                      PgTextArrayLiteral(cells[0].environment), PgTextArrayLiteral(cells[0].day),
                      PgTextArrayLiteral(cells[0].dims));
  }
  if (!cells[1].project.empty()) {
    txn.exec_prepared(sql::kDropEmptyDailyModels.name, PgTextArrayLiteral(cells[1].project),
                      PgTextArrayLiteral(cells[1].environment), PgTextArrayLiteral(cells[1].day),
                      PgTextArrayLiteral(cells[1].dims), PgTextArrayLiteral(cells[1].model));
  }
}

}  // namespace xtrace::projector
