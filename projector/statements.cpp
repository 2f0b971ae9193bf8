#include "projector/statements.hpp"

#include "projector/sql.hpp"

namespace xtrace::projector {

void PrepareFoldStatements(pqxx::connection& conn) {
  // The statements' arrays hold anything from one row (live traffic) to thousands (a backlog).
  // A generic plan assumes ten rows per unnest and picks nested loops over CTEs that grow
  // quadratically with a large chunk; a custom plan sees each array's length.
  conn.set_variable("plan_cache_mode", "force_custom_plan");
  // A chunk touches a few thousand keys of tables that hold millions, in pages that are cached
  // (they were just written). At the default random_page_cost of 4 the planner prices that many
  // index probes above reading a whole table of a few hundred thousand rows into a hash, and
  // picks the scan, whose cost then grows with the table. 1.1 prices cached pages as they are.
  conn.set_variable("random_page_cost", "1.1");
  // Once the tables are large the refresh's estimated cost passes jit_above_cost, and compiling
  // it took about 900 ms a chunk, for a statement that runs in under 100 ms.
  conn.set_variable("jit", "off");
  for (const sql::Statement* statement : sql::All()) conn.prepare(statement->name, statement->text);
}

}  // namespace xtrace::projector
