// A WAL written by an earlier build (WAL record format 1), checked in under
// tests/fixtures/wal-format-1/: the log outlives binaries, so every later build must decode it and
// project it to the database the build that wrote it projected (expected.jsonl, one row per line
// as testing::DumpProjections renders it). Both the server and `xtrace-replay --rebuild` are held
// to it.
//
// Later schemas may add columns: an expected row must be contained in the actual one (every key
// it has, with an equal value), so the fixture stays valid across additive migrations while
// nothing that was projected may change or go missing.
//
// The fixture was written by this test in its writing mode, with the build of its time:
//   XTRACE_WRITE_WAL_FIXTURE=1 build/bin/xtrace_replay_tests --gtest_filter='WalFormat1.*'
// (under the ctest fixture's PostgreSQL). Never rewrite it for a newer format: add a new one.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/command.hpp"
#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/projection_dump.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr char kToken[] = "fixture-token";
const fs::path kFixture = fs::path(XTRACE_FIXTURES_DIR) / "wal-format-1";

// What the fixture's WAL holds: every key of both write routes, absent and null values, partial
// updates, an observation before its trace, two projects and environments, a resent point.
const std::vector<std::pair<std::string, std::string>> kRequests = {
    {"/v1/l/batch", R"({"trace":{"id":"11111111-1111-4111-8111-111111111111",
      "timestamp":"2026-03-01T10:00:00.123456Z","name":"chat","userId":"u-1","sessionId":"s-1",
      "release":"r-1","version":"v-1","externalId":"x-1","tags":["b","a"],
      "input":{"q":"hi","n":[1,2.5,null,true]},"output":"hello","metadata":{"m":{"k":1}},
      "public":true,"bookmarked":false,"environment":"prod","latency":1.5,"totalCost":0.01},
      "observations":[{"id":"22222222-2222-4222-8222-222222222222",
      "traceId":"11111111-1111-4111-8111-111111111111","type":"GENERATION","name":"llm",
      "startTime":"2026-03-01T10:00:00Z","endTime":"2026-03-01T10:00:01.5Z",
      "completionStartTime":"2026-03-01T10:00:00.25Z","model":"gpt-x",
      "modelParameters":{"temperature":0.2},"input":[{"role":"user","content":"hi"}],
      "output":{"role":"assistant","content":"hello"},
      "usage":{"input":10,"output":20,"total":30,"unit":"TOKENS"},"metadata":{"a":1},
      "level":"DEFAULT","statusMessage":"ok","promptId":"p-1","promptName":"greet",
      "promptVersion":3,"modelId":"mid","inputPrice":0.001,"outputPrice":0.002,
      "totalPrice":0.003,"calculatedInputCost":0.01,"calculatedOutputCost":0.04,
      "calculatedTotalCost":0.05,"latency":1.5,"timeToFirstToken":0.25,"promptTokens":10,
      "completionTokens":20,"totalTokens":30,"unit":"TOKENS","environment":"prod"},
      {"id":"33333333-3333-4333-8333-333333333333",
      "traceId":"11111111-1111-4111-8111-111111111111","type":"SPAN","name":"tool",
      "parentObservationId":"22222222-2222-4222-8222-222222222222",
      "startTime":"2026-03-01T10:00:00.5Z","endTime":"2026-03-01T10:00:00.75Z"}]})"},
    // A partial update: absent and null keep what is stored; metadata deep-merges, tags union.
    {"/v1/l/batch", R"({"trace":{"id":"11111111-1111-4111-8111-111111111111","name":null,
      "userId":"u-2","tags":["c"],"metadata":{"m":{"j":2}}},
      "observations":[{"id":"22222222-2222-4222-8222-222222222222",
      "traceId":"11111111-1111-4111-8111-111111111111","endTime":"2026-03-01T10:00:02Z",
      "output":null,"usage":{"input":12,"output":20}}]})"},
    // An observation before its trace (a placeholder trace), then the trace, in another project.
    {"/v1/l/batch", R"({"observations":[{"id":"55555555-5555-4555-8555-555555555555",
      "traceId":"44444444-4444-4444-8444-444444444444","type":"EVENT","name":"early",
      "startTime":"2026-03-02T23:59:59.999999Z","model":"m-2","promptTokens":5,
      "calculatedTotalCost":0.5,"projectId":"other"}]})"},
    {"/v1/l/batch", R"({"trace":{"id":"44444444-4444-4444-8444-444444444444","name":"late",
      "timestamp":"2026-03-02T12:00:00+02:00","projectId":"other","tags":[]}})"},
    // No timestamp: the trace takes the record's receive time, which the WAL keeps.
    {"/v1/l/batch", R"({"trace":{"id":"66666666-6666-4666-8666-666666666666"}})"},
    {"/v1/metrics/batch", R"({"metrics":[
      {"name":"gpu_util","labels":{"gpu":"0","host":"h1"},"value":0.5,
       "timestamp":"2026-03-01T10:00:00Z"},
      {"name":"gpu_util","labels":{"host":"h1","gpu":"1"},"value":0.75,
       "timestamp":"2026-03-01T10:00:30Z"},
      {"name":"gpu_util","labels":{"gpu":"0","host":"h1"},"value":1e-7,
       "timestamp":"2026-03-01T10:01:00.5Z"},
      {"name":"mem","value":-3,"timestamp":"2026-03-01T11:00:00Z"}]})"},
    // A resent point: stored once.
    {"/v1/metrics/batch", R"({"metrics":[{"name":"gpu_util","labels":{"gpu":"0","host":"h1"},
      "value":0.5,"timestamp":"2026-03-01T10:00:00Z"}]})"},
};

// A writable copy of the fixture's WAL (RocksDB writes on open, and the fixture stays as it is).
std::string CopyOfFixtureWal(const testing::TempDir& dir) {
  const fs::path copy = fs::path(dir.path()) / "wal";
  fs::copy(kFixture / "wal", copy, fs::copy_options::recursive);
  return copy.string();
}

// Waits until the server has projected everything in its WAL.
bool Projected(const testing::ServerProcess& server) {
  return testing::WaitUntil([&] {
    return testing::Http(server.port(), "GET", "/readyz").body.find("\"lagRecords\":0") !=
           std::string::npos;
  });
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Whether `actual` holds `expected`: objects key by key (extra keys allowed), all else equal.
bool Contains(const json::value& actual, const json::value& expected) {
  if (!expected.is_object() || !actual.is_object()) return actual == expected;
  for (const auto& [key, value] : expected.as_object()) {
    const auto* found = actual.as_object().if_contains(key);
    if (!found || !Contains(*found, value)) return false;
  }
  return true;
}

void ExpectProjectedAsWritten(const std::string& database_url) {
  std::ifstream in(kFixture / "expected.jsonl");
  ASSERT_TRUE(in) << "missing " << kFixture / "expected.jsonl";
  const auto expected = Lines(std::string(std::istreambuf_iterator<char>(in), {}));
  const auto actual = Lines(testing::DumpProjections(database_url));
  ASSERT_EQ(actual.size(), expected.size()) << testing::DumpProjections(database_url);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(Contains(json::parse(actual[i]), json::parse(expected[i])))
        << "row " << i << "\nexpected: " << expected[i] << "\nactual:   " << actual[i];
  }
}

// The writing mode: a server of this build writes the WAL, projects it, and its projection
// becomes the expectation.
void WriteFixture() {
  testing::TestDatabase db;
  fs::remove_all(kFixture);
  fs::create_directories(kFixture);
  {
    testing::ServerProcess server({{"DATABASE_URL", db.url()},
                                   {"API_BEARER_TOKEN", kToken},
                                   {"XTRACE_WAL_DIR", (kFixture / "wal").string()}});
    ASSERT_TRUE(server.Start()) << server.Log();
    for (const auto& [route, body] : kRequests) {
      const auto reply = testing::Http(server.port(), "POST", route, body,
                                       {{"Authorization", std::string("Bearer ") + kToken},
                                        {"Content-Type", "application/json"}});
      ASSERT_EQ(reply.status, 200) << route << " " << reply.body;
    }
    ASSERT_TRUE(Projected(server));
    ASSERT_EQ(server.Stop(), 0);
  }
  std::ofstream(kFixture / "expected.jsonl") << testing::DumpProjections(db.url());
}

TEST(WalFormat1, TheServerProjectsItAsTheBuildThatWroteIt) {
  if (std::getenv("XTRACE_WRITE_WAL_FIXTURE")) WriteFixture();
  testing::TestDatabase db;
  testing::TempDir dir;
  testing::ServerProcess server({{"DATABASE_URL", db.url()},
                                 {"API_BEARER_TOKEN", kToken},
                                 {"XTRACE_WAL_DIR", CopyOfFixtureWal(dir)}});
  ASSERT_TRUE(server.Start()) << server.Log();
  ASSERT_TRUE(Projected(server)) << testing::Http(server.port(), "GET", "/readyz").body;
  ExpectProjectedAsWritten(db.url());
}

TEST(WalFormat1, ReplayRebuildsItAsTheBuildThatWroteIt) {
  testing::TestDatabase db;
  testing::TempDir dir;
  const auto run =
      testing::RunCommand(std::string(XTRACE_REPLAY_BIN) + " --wal-dir " + CopyOfFixtureWal(dir) +
                          " --database-url " + db.url() + " --rebuild");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rebuilt from 7 records"), std::string::npos) << run.output;
  ExpectProjectedAsWritten(db.url());
}

}  // namespace
}  // namespace xtrace
