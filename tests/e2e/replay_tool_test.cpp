// xtrace-replay against a WAL the real server wrote, and real databases.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <thread>

#include "support/command.hpp"
#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/projection_dump.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

constexpr char kToken[] = "replay-token";

using Run = testing::CommandResult;

Run Replay(const std::string& args) {
  return testing::RunCommand(std::string(XTRACE_REPLAY_BIN) + " " + args);
}

using testing::DumpProjections;

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-000000000000", i);
  return buf;
}

TEST(ReplayTool, RebuildYieldsTheDatabaseTheServerProjected) {
  testing::TestDatabase served, rebuilt;
  testing::TempDir wal;
  const std::string wal_dir = wal.path() + "/wal";
  const std::map<std::string, std::string> auth = {
      {"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}};
  {
    testing::ServerProcess server({{"DATABASE_URL", served.url()},
                                   {"API_BEARER_TOKEN", kToken},
                                   {"XTRACE_WAL_DIR", wal_dir}});
    ASSERT_TRUE(server.Start()) << server.Log();
    for (int i = 0; i < 12; ++i) {
      // Creates, partial updates of earlier traces, observations before their trace, metrics.
      const std::string t = Id(i % 5);
      const std::string body =
          R"({"trace":{"id":")" + t + R"(","name":"n)" + std::to_string(i) + R"(","tags":["t)" +
          std::to_string(i % 3) + R"("],"metadata":{"k)" + std::to_string(i) + R"(":)" +
          std::to_string(i) + R"(}},"observations":[{"id":")" + Id(100 + i % 7) +
          R"(","traceId":")" + Id((i + 1) % 6) + R"(","startTime":"2026-01-01T00:00:0)" +
          std::to_string(i % 10) + R"(Z","model":"m)" + std::to_string(i % 2) +
          R"(","calculatedTotalCost":0.25,"usage":{"input":)" + std::to_string(i) + R"(}}]})";
      ASSERT_EQ(testing::Http(server.port(), "POST", "/v1/l/batch", body, auth).status, 200);
    }
    const std::string metrics = R"({"metrics":[{"name":"m","labels":{"a":"1"},"value":1,
        "timestamp":"2026-01-01T00:00:00Z"},{"name":"m","labels":{"a":"1"},"value":2,
        "timestamp":"2026-01-01T00:00:00Z"}]})";
    ASSERT_EQ(testing::Http(server.port(), "POST", "/v1/metrics/batch", metrics, auth).status, 200);
    // Wait until everything is projected, then stop.
    ASSERT_TRUE(testing::WaitUntil([&] {
      return testing::Http(server.port(), "GET", "/readyz").body.find("\"lagRecords\":0") !=
             std::string::npos;
    })) << "not projected: "
        << testing::Http(server.port(), "GET", "/readyz").body;
    EXPECT_EQ(server.Stop(), 0);
  }
  const std::string expected = DumpProjections(served.url());
  ASSERT_NE(expected.find("\"n11\""), std::string::npos);

  auto run = Replay("--wal-dir " + wal_dir + " --database-url " + rebuilt.url() + " --rebuild");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rebuilt from 13 records"), std::string::npos) << run.output;
  EXPECT_EQ(DumpProjections(rebuilt.url()), expected);

  // Replaying a middle range into the served database changes nothing.
  run = Replay("--wal-dir " + wal_dir + " --database-url " + served.url() +
               " --from-seq 3 --to-seq 7");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(DumpProjections(served.url()), expected);

  run = Replay("--wal-dir " + wal_dir + " --dry-run");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("decoded 13 records (26 events)"), std::string::npos) << run.output;

  // --derived: with every derived table emptied (as after a bulk load of base rows), the
  // rollups and aggregates are recomputed to exactly what the projector maintained.
  {
    pqxx::connection conn(served.url());
    pqxx::work txn(conn);
    txn.exec0(
        "TRUNCATE metric_rollups, trace_usage, trace_model_usage, daily_traces, daily_models");
    txn.exec0("UPDATE traces SET obs_latency = NULL, obs_total_cost = NULL");
    txn.commit();
  }
  ASSERT_NE(DumpProjections(served.url()), expected);
  run = Replay("--derived --database-url " + served.url());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("from 6 traces and 1 metric points"), std::string::npos) << run.output;
  EXPECT_EQ(DumpProjections(served.url()), expected);
  EXPECT_NE(Replay("--derived --wal-dir " + wal_dir + " --database-url " + served.url()).exit_code,
            0);
}

TEST(ReplayTool, ClearErrors) {
  testing::TempDir empty;
  auto run = Replay("--wal-dir /nonexistent --dry-run");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("no WAL in /nonexistent"), std::string::npos) << run.output;
  EXPECT_NE(Replay("--dry-run").exit_code, 0) << "--wal-dir is required";
  EXPECT_EQ(Replay("--help").exit_code, 0);
}

}  // namespace
}  // namespace xtrace
