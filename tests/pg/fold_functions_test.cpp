// The SQL functions of migration 0014, which the projector's statements share, must be inlined by
// the planner: the statements then plan and compute exactly as with the expressions written out.
// A function that stops being inlinable (made STRICT, for instance, or given a second statement)
// still returns the same results, only row by row through the function executor, which would
// slow every chunk; these tests catch that.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <string>

#include "schema/migrator.hpp"
#include "support/pg.hpp"

namespace xtrace {
namespace {

std::string Plan(pqxx::connection& conn, const std::string& query) {
  pqxx::work txn(conn);
  std::string plan;
  for (const auto& row : txn.exec("EXPLAIN (VERBOSE, COSTS OFF) " + query)) {
    plan += std::string(row[0].c_str()) + "\n";
  }
  return plan;
}

class FoldFunctionsTest : public ::testing::Test {
 protected:
  void SetUp() override { schema::ApplyMigrations(conn_); }
  testing::TestDatabase db_;
  pqxx::connection conn_{db_.url()};
};

TEST_F(FoldFunctionsTest, ObservationStatsIsInlinedIntoALateralJoin) {
  const std::string plan = Plan(conn_,
                                "SELECT * FROM traces t "
                                "CROSS JOIN LATERAL xtrace_observation_stats(t.project_id, t.id)");
  EXPECT_EQ(plan.find("Function Scan"), std::string::npos) << plan;
  EXPECT_NE(plan.find("observations o"), std::string::npos) << plan;
}

TEST_F(FoldFunctionsTest, TraceDimsIsInlinedAsItsExpression) {
  const std::string plan =
      Plan(conn_, "SELECT xtrace_trace_dims(name, user_id, version, release, tags) FROM traces");
  EXPECT_EQ(plan.find("xtrace_trace_dims"), std::string::npos) << plan;
  EXPECT_NE(plan.find("jsonb_build_object"), std::string::npos) << plan;
}

TEST_F(FoldFunctionsTest, EventIsNewerIsInlinedAsItsExpression) {
  const std::string plan = Plan(conn_,
                                "SELECT id FROM traces t WHERE xtrace_event_is_newer(t.src_wal, "
                                "t.src_seq, '00000000-0000-4000-8000-000000000000', 42)");
  EXPECT_EQ(plan.find("xtrace_event_is_newer"), std::string::npos) << plan;
  EXPECT_NE(plan.find("IS DISTINCT FROM"), std::string::npos) << plan;
}

// Inlining keeps the results too: the functions' values are those of the expressions.
TEST_F(FoldFunctionsTest, FunctionsComputeTheirExpressions) {
  pqxx::work txn(conn_);
  const auto row = txn.exec1(
      "SELECT xtrace_trace_dims('n', NULL, 'v', NULL, '{b,a}')::text AS dims,"
      " xtrace_event_is_newer(NULL, NULL, gen_random_uuid(), 1) AS unknown_row,"
      " xtrace_event_is_newer('00000000-0000-4000-8000-000000000000', 5,"
      "                       '00000000-0000-4000-8000-000000000000', 5) AS same_position,"
      " xtrace_event_is_newer('00000000-0000-4000-8000-000000000000', 5,"
      "                       '00000000-0000-4000-8000-000000000000', 6) AS later_position,"
      " xtrace_event_is_newer('00000000-0000-4000-8000-000000000000', 5,"
      "                       '00000000-0000-4000-8000-000000000001', 1) AS other_wal");
  EXPECT_EQ(
      row["dims"].as<std::string>(),
      R"({"name": "n", "tags": ["b", "a"], "userId": null, "release": null, "version": "v"})");
  EXPECT_TRUE(row["unknown_row"].as<bool>());
  EXPECT_FALSE(row["same_position"].as<bool>());
  EXPECT_TRUE(row["later_position"].as<bool>());
  EXPECT_TRUE(row["other_wal"].as<bool>());
  txn.exec0(
      "INSERT INTO observations (project_id, id, trace_id, start_time, end_time,"
      "                          calculated_total_cost) VALUES"
      " ('p', gen_random_uuid(), '00000000-0000-4000-8000-0000000000aa',"
      "  '2024-01-01T00:00:00Z', '2024-01-01T00:00:01.5Z', 0.25),"
      " ('p', gen_random_uuid(), '00000000-0000-4000-8000-0000000000aa',"
      "  '2024-01-01T00:00:01Z', '2024-01-01T00:00:03Z', 0.5)");
  const auto stats = txn.exec1(
      "SELECT * FROM xtrace_observation_stats('p', '00000000-0000-4000-8000-0000000000aa')");
  EXPECT_EQ(stats["latency"].as<double>(), 3.0);
  EXPECT_EQ(stats["total_cost"].as<double>(), 0.75);
  EXPECT_EQ(stats["observations"].as<int64_t>(), 2);
  const auto none = txn.exec1(
      "SELECT * FROM xtrace_observation_stats('p', '00000000-0000-4000-8000-0000000000bb')");
  EXPECT_TRUE(none["latency"].is_null());
  EXPECT_TRUE(none["total_cost"].is_null());
  EXPECT_EQ(none["observations"].as<int64_t>(), 0);
}

}  // namespace
}  // namespace xtrace
