// The bodies of /healthz, /readyz, the status route and the rate-limit statistics, from plain
// snapshots of the WAL, the projector and the limiter: the fields and numbers operators and load
// balancers read (docs/api.md).
#include <gtest/gtest.h>

#include "server/health.hpp"

namespace xtrace::server {
namespace {

projector::Status Projector(uint64_t projected, bool database_up, uint64_t quarantined = 0,
                            std::vector<projector::StreamStatus> streams = {}) {
  projector::Status st;
  st.projected_seq = projected;
  st.database_up = database_up;
  st.quarantined_records = quarantined;
  st.streams = std::move(streams);
  return st;
}

projector::StreamStatus Stream(std::string name, uint64_t projected, std::string halted = {}) {
  projector::StreamStatus s;
  s.name = std::move(name);
  s.projected_seq = projected;
  s.halted = std::move(halted);
  return s;
}

TEST(Health, HealthIsOk) {
  const auto r = HealthResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
}

TEST(Health, LagIsNeverNegative) {
  EXPECT_EQ(LagRecords(10, 4), 6u);
  EXPECT_EQ(LagRecords(4, 4), 0u);
  // A cursor ahead of the log (it lost records it had acknowledged).
  EXPECT_EQ(LagRecords(4, 10), 0u);
}

TEST(Health, Readiness) {
  const struct {
    const char* what;
    projector::Status projector;
    uint64_t last_seq;
    bool accepting;
    int status;
    const char* body;
  } cases[] = {
      {"ready, lagging", Projector(1040, true), 1042, true, 200,
       R"({"status":"ready","wal":{"acceptingWrites":true,"lastSequence":1042},)"
       R"("postgres":"up","projector":{"projectedSequence":1040,"lagRecords":2,)"
       R"("quarantinedEvents":0,"halted":{}}})"},
      // The WAL keeps ingest available: a node whose database is down stays in the balancer.
      {"database down", Projector(0, false), 7, true, 200,
       R"({"status":"ready","wal":{"acceptingWrites":true,"lastSequence":7},)"
       R"("postgres":"down","projector":{"projectedSequence":0,"lagRecords":7,)"
       R"("quarantinedEvents":0,"halted":{}}})"},
      {"WAL refusing writes", Projector(5, true), 5, false, 503,
       R"({"status":"not_ready","wal":{"acceptingWrites":false,"lastSequence":5},)"
       R"("postgres":"up","projector":{"projectedSequence":5,"lagRecords":0,)"
       R"("quarantinedEvents":0,"halted":{}}})"},
      {"cursor ahead of the log", Projector(10, true), 4, true, 200,
       R"({"status":"ready","wal":{"acceptingWrites":true,"lastSequence":4},)"
       R"("postgres":"up","projector":{"projectedSequence":10,"lagRecords":0,)"
       R"("quarantinedEvents":0,"halted":{}}})"},
      {"a halted stream, quarantined records",
       Projector(3, true, 2,
                 {Stream("traces", 3, "the record cannot be decoded: x"), Stream("metrics", 9)}),
       9, true, 200,
       R"({"status":"ready","wal":{"acceptingWrites":true,"lastSequence":9},)"
       R"("postgres":"up","projector":{"projectedSequence":3,"lagRecords":6,)"
       R"("quarantinedEvents":2,"halted":{"traces":"the record cannot be decoded: x"}}})"},
  };
  for (const auto& c : cases) {
    const auto r = ReadyResponse(c.projector, c.last_seq, c.accepting);
    EXPECT_EQ(r.status, c.status) << c.what;
    EXPECT_EQ(r.body, c.body) << c.what;
  }
}

TEST(Health, StatusShowsTheWalAndEveryStream) {
  wal::Stats wal;
  wal.first_seq = 1;
  wal.last_seq = 1042;
  wal.disk_bytes = 5242880;
  wal.backlog_bytes = 2048;
  wal.free_disk_bytes = 53687091200;
  wal.commits = 310;
  wal.committed_records = 1042;
  const auto st = Projector(1040, true, 0, {Stream("traces", 1040), Stream("metrics", 1042)});
  const auto r = StatusResponse("3db2", wal, st, 0.5);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"wal":{"id":"3db2","firstSequence":1,"lastSequence":1042,"diskBytes":5242880,)"
            R"("backlogBytes":2048,"freeDiskBytes":53687091200,"acceptingWrites":true,)"
            R"("refusal":null,"commits":310,"committedRecords":1042,"trimmedRecords":0},)"
            R"("projector":{"projectedSequence":1040,"lagRecords":2,"lagSeconds":0.5,)"
            R"("postgres":"up","quarantinedEvents":0,"halted":{},)"
            R"("streams":{"traces":1040,"metrics":1042}}})");

  // Refused appends say why; a stream that cannot go on is named.
  wal.accepting_writes = false;
  wal.refusal = "backlog over XTRACE_WAL_MAX_BYTES";
  const auto refused =
      StatusResponse("3db2", wal, Projector(1040, false, 1, {Stream("traces", 1040, "why")}), 0);
  EXPECT_NE(
      refused.body.find(R"("acceptingWrites":false,"refusal":"backlog over XTRACE_WAL_MAX_BYTES")"),
      std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find(R"("lagSeconds":0.0,"postgres":"down","quarantinedEvents":1,)"
                              R"("halted":{"traces":"why"})"),
            std::string::npos)
      << refused.body;
}

TEST(Health, RateLimitStatsHaveTheReferenceShape) {
  RateLimiter::Stats s;
  s.qps = 1;
  s.burst = 3;
  s.total_allowed = 3;
  s.total_rejected = 1;
  s.top_rejected = {{"bearer:***", 1}};
  EXPECT_EQ(RateLimitStatsResponse(s).body,
            R"({"rate_limit_burst":3,"rate_limit_qps":1,"rejection_rate":0.25,)"
            R"("top_rejected_tokens":[{"count":1,"token":"bearer:***"}],)"
            R"("total_allowed":3,"total_rejected":1})");
  EXPECT_NE(RateLimitStatsResponse({}).body.find(R"("rejection_rate":0.0,)"), std::string::npos)
      << "no requests: no division by zero";
}

}  // namespace
}  // namespace xtrace::server
