// The real xtrace-server binary over loopback, against a real PostgreSQL.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "server/config.hpp"
#include "support/command.hpp"
#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/server_fixture.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

using testing::Http;
using testing::HttpResult;

constexpr char kToken[] = "e2e-token";
constexpr char kTrace[] = "7d0c8a9e-1111-4222-8333-444455556666";

class ServerTest : public testing::ServerFixture {
 protected:
  ServerTest() : ServerFixture(kToken) {}
  std::map<std::string, std::string> ExtraEnv() const override {
    return {{"XTRACE_PUBLIC_KEY", "pk-e2e"},
            {"XTRACE_SECRET_KEY", "sk-e2e"},
            {"XTRACE_MAX_REQUEST_BODY_BYTES", "65536"},
            {"XTRACE_LOG_LEVEL", "debug"}};
  }
  // Polls the detail route until the projector has written the trace; the last answer.
  HttpResult WaitForTrace(const std::string& id) {
    HttpResult r;
    (void)testing::WaitUntil([&] { return (r = Get("/api/public/traces/" + id)).status == 200; });
    return r;  // callers assert its status
  }
};

const std::string kBatch = std::string(R"({"trace":{"id":")") + kTrace +
                           R"(","name":"chat","userId":"alice","sessionId":"sess-001",
  "tags":["prod"],"metadata":{"turn_id":"t1"},"timestamp":"2026-01-01T00:00:00Z"},
  "observations":[{"id":"00000000-0000-0000-0000-000000000002","traceId":")" +
                           kTrace + R"(","type":"GENERATION","name":"chat",
  "model":"gpt-4o-mini","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01Z",
  "promptTokens":12,"completionTokens":30,"totalTokens":42,"input":[{"role":"user","content":"hi"}],
  "output":"hello"}]})";

TEST_F(ServerTest, HealthAndReadiness) {
  auto health = Http(server_->port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  auto ready = Http(server_->port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(boost::json::parse(ready.body).at("status"), "ready");
  EXPECT_EQ(Http(server_->port(), "HEAD", "/healthz").status, 200);
}

TEST_F(ServerTest, BatchIngestThenListAndDetail) {
  auto ack = PostBatch(kBatch);
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.body, R"({"message":"Request Successful."})");

  auto detail = WaitForTrace(kTrace);
  ASSERT_EQ(detail.status, 200) << detail.body;
  auto d = boost::json::parse(detail.body).as_object();
  EXPECT_EQ(d["name"], "chat");
  EXPECT_EQ(d["timestamp"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(d["htmlPath"].as_string(), std::string("/project/default/traces/") + kTrace);
  ASSERT_EQ(d["observations"].as_array().size(), 1u);
  const auto& obs = d["observations"].as_array()[0].as_object();
  EXPECT_EQ(obs.at("model"), "gpt-4o-mini");
  EXPECT_EQ(obs.at("usage").at("total").as_int64(), 42);
  EXPECT_EQ(obs.at("output"), "hello");

  auto list = Get("/api/public/traces?userId=alice&limit=10");
  ASSERT_EQ(list.status, 200);
  auto l = boost::json::parse(list.body).as_object();
  ASSERT_EQ(l["data"].as_array().size(), 1u);
  EXPECT_EQ(l["data"].as_array()[0].at("sessionId"), "sess-001");
  EXPECT_EQ(l["data"].as_array()[0].at("observations").as_array().size(), 1u);
  EXPECT_EQ(l["meta"].at("totalItems").as_int64(), 1);
  EXPECT_EQ(boost::json::parse(Get("/api/public/traces?sessionId=other").body)
                .at("data")
                .as_array()
                .size(),
            0u);
  EXPECT_EQ(Get("/api/public/traces/99999999-1111-4222-8333-444455556666").status, 404);
  EXPECT_EQ(Get("/api/public/traces/not-a-uuid").status, 404);  // ids are opaque text
  EXPECT_EQ(Get("/api/public/traces/" + std::string(201, 'x')).status, 400);
  EXPECT_EQ(Get("/api/public/traces?page=abc").status, 400);

  auto daily =
      Get("/api/public/metrics/daily?fromTimestamp=2025-12-01T00:00:00Z"
          "&toTimestamp=2026-02-01T00:00:00Z");
  ASSERT_EQ(daily.status, 200) << daily.body;
  EXPECT_EQ(
      daily.body,
      R"({"data":[{"date":"2026-01-01","countTraces":1,"countObservations":1,"totalCost":0.0,)"
      R"("usage":[{"countObservations":1,"countTraces":1,"inputUsage":12,"model":"gpt-4o-mini",)"
      R"("outputUsage":30,"totalCost":0.0,"totalUsage":42}]}],)"
      R"("meta":{"page":1,"limit":50,"totalItems":1,"totalPages":1}})");
}

TEST_F(ServerTest, BasicAuthWorksAndBadCredentialsGet401Json) {
  // base64("pk-e2e:sk-e2e")
  auto ok = Http(server_->port(), "GET", "/api/public/traces", "",
                 {{"Authorization", "Basic cGstZTJlOnNrLWUyZQ=="}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  for (const std::map<std::string, std::string>& headers :
       {std::map<std::string, std::string>{},
        {{"Authorization", "Bearer wrong"}},
        {{"Authorization", "Basic cGstZTJlOndyb25n"}}}) {
    auto r = Http(server_->port(), "GET", "/api/public/traces", "", headers);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.body, R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
  }
  auto write =
      Http(server_->port(), "POST", "/v1/l/batch", "{}", {{"Content-Type", "application/json"}});
  EXPECT_EQ(write.status, 401);
}

TEST_F(ServerTest, BadInputIsRejectedWithJsonAndWritesNothing) {
  auto expect_error = [&](const HttpResult& r, int status, const std::string& code,
                          const std::string& field = "") {
    EXPECT_EQ(r.status, status) << r.body;
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(body["code"], code.c_str());
    EXPECT_TRUE(body["message"].is_string());
    if (!field.empty()) {
      EXPECT_EQ(body["field"], field.c_str());
    }
  };
  expect_error(PostBatch("{not json"), 400, "BAD_REQUEST");
  expect_error(PostBatch(R"({"observations":[{"id":")" + std::string(kTrace) + R"(","traceId":")" +
                         kTrace + R"("},{"id":")" + kTrace + R"("}]})"),
               422, "UNPROCESSABLE_ENTITY", "observations[1].traceId");
  expect_error(PostBatch(R"({"trace":{"id":")" + std::string(kTrace) + R"(","tags":"x"}})"), 422,
               "UNPROCESSABLE_ENTITY", "trace.tags");
  expect_error(
      Http(server_->port(), "POST", "/v1/l/batch", "{}",
           {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "text/plain"}}),
      415, "UNSUPPORTED_MEDIA_TYPE");
  expect_error(PostBatch(std::string(70000, ' ') + "{}"), 413, "PAYLOAD_TOO_LARGE");
  expect_error(Http(server_->port(), "GET", "/no/such/route"), 404, "NOT_FOUND");
  expect_error(Http(server_->port(), "DELETE", "/v1/l/batch", "", auth_), 405,
               "METHOD_NOT_ALLOWED");

  // Nothing was appended: the WAL is still empty, and the server is healthy.
  auto ready = boost::json::parse(Http(server_->port(), "GET", "/readyz").body);
  EXPECT_EQ(ready.at("wal").at("lastSequence").as_int64(), 0);
  EXPECT_EQ(PostBatch("{}").status, 200);
}

TEST_F(ServerTest, AcknowledgedDataSurvivesARestart) {
  ASSERT_EQ(PostBatch(kBatch).status, 200);
  ASSERT_EQ(WaitForTrace(kTrace).status, 200);
  EXPECT_EQ(server_->Stop(), 0) << "graceful stop should exit 0";

  // Acknowledged while the server is stopped? No: ingest a second trace right before a kill -9.
  server_ = std::make_unique<testing::ServerProcess>(Env());
  ASSERT_TRUE(server_->Start()) << server_->Log();
  EXPECT_EQ(WaitForTrace(kTrace).status, 200);
  const std::string second = "8d0c8a9e-1111-4222-8333-444455556666";
  ASSERT_EQ(PostBatch(R"({"trace":{"id":")" + second + R"(","name":"after-restart"}})").status,
            200);
  server_->Kill();

  server_ = std::make_unique<testing::ServerProcess>(Env());
  ASSERT_TRUE(server_->Start()) << server_->Log();
  auto r = WaitForTrace(second);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(boost::json::parse(r.body).at("name"), "after-restart");
  auto list = boost::json::parse(Get("/api/public/traces").body);
  EXPECT_EQ(list.at("meta").at("totalItems").as_int64(), 2);
}

TEST_F(ServerTest, IngestKeepsAcknowledgingWhileTheDatabaseIsUnreachable) {
  // A second server whose database URL points at a closed port: writes must still be accepted
  // (they wait in the WAL) and readiness stays 200 while reporting PostgreSQL down.
  auto env = Env();
  env["DATABASE_URL"] =
      "postgresql://postgres@127.0.0.1:" + std::to_string(testing::FreePort()) + "/nowhere";
  env["XTRACE_WAL_DIR"] = wal_dir_.path() + "/wal-offline";
  testing::ServerProcess offline(env);
  ASSERT_TRUE(offline.Start()) << offline.Log();
  auto ack = Http(offline.port(), "POST", "/v1/l/batch", kBatch, auth_json_);
  EXPECT_EQ(ack.status, 200) << ack.body;
  auto ready = Http(offline.port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  auto body = boost::json::parse(ready.body);
  EXPECT_EQ(body.at("postgres"), "down");
  EXPECT_EQ(body.at("projector").at("lagRecords").as_int64(), 1);
  // Reads need the database: a clean 503 with Retry-After, not a hang or a 500.
  auto read = Http(offline.port(), "GET", "/api/public/traces", "", auth_);
  EXPECT_EQ(read.status, 503) << read.body;
  EXPECT_EQ(read.headers["Retry-After"], "1");
}

TEST_F(ServerTest, MetricsBatchIsAcknowledgedAndProjected) {
  const std::string body = R"({"metrics":[{"name":"gpu_util","labels":{"gpu":"0"},"value":0.5,
                               "timestamp":"2026-01-01T00:00:00Z"}]})";
  auto ack = Http(server_->port(), "POST", "/v1/metrics/batch", body, auth_json_);
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.body, R"({"message":"Request Successful."})");
  auto bad = Http(server_->port(), "POST", "/v1/metrics/batch", R"({"metrics":[{"name":"x"}]})",
                  auth_json_);
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(boost::json::parse(bad.body).at("field"), "metrics[0].value");

  // The status route shows the record projected.
  boost::json::value status;
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto r = Get("/api/internal/status");
    if (r.status != 200) return false;
    status = boost::json::parse(r.body);
    return status.at("projector").at("lagRecords").to_number<int64_t>() == 0;
  })) << "not projected: "
      << status;
  EXPECT_EQ(status.at("wal").at("lastSequence").to_number<int64_t>(), 1);
  EXPECT_EQ(status.at("projector").at("projectedSequence").to_number<int64_t>(), 1);
  EXPECT_EQ(status.at("projector").at("postgres"), "up");
  EXPECT_EQ(status.at("wal").at("acceptingWrites"), true);
  EXPECT_GT(status.at("wal").at("diskBytes").to_number<int64_t>(), 0);
  EXPECT_EQ(Http(server_->port(), "GET", "/api/internal/status").status, 401);

  auto q =
      Get("/api/public/metrics/query?name=gpu_util&from=2026-01-01T00:00:00Z"
          "&to=2026-01-01T00:10:00Z&agg=max");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.body, R"({"data":[{"labels":{"gpu":"0"},"values":[{"timestamp":)"
                    R"("2026-01-01T00:00:00+00:00","value":0.5}]}],"meta":{"latest_ts":)"
                    R"("2026-01-01T00:00:00+00:00","series_count":1,"truncated":false}})");
  EXPECT_EQ(Get("/api/public/metrics/query?name=gpu_util&step=7m").status, 400);
  EXPECT_EQ(Get("/api/public/metrics/names").body, R"({"data":["gpu_util"]})");
}

TEST_F(ServerTest, ProjectsListsTheConfiguredProject) {
  auto r = Get("/api/public/projects");
  ASSERT_EQ(r.status, 200);
  auto project = boost::json::parse(r.body).at("data").as_array().at(0);
  EXPECT_EQ(project.at("id"), "default");
  EXPECT_EQ(project.at("name"), "default");
  EXPECT_TRUE(project.at("metadata").as_object().empty());
  EXPECT_TRUE(project.at("createdAt").as_string().ends_with("+00:00"));
  // A key pair is configured here, so the compatibility mode cannot open it.
  EXPECT_EQ(Http(server_->port(), "GET", "/api/public/projects").status, 401);
}

TEST_F(ServerTest, QueryRoutesAreRateLimitedPerCredential) {
  auto env = Env();
  env["RATE_LIMIT_QPS"] = "1";
  env["RATE_LIMIT_BURST"] = "3";
  env["XTRACE_WAL_DIR"] = wal_dir_.path() + "/wal-limited";
  testing::ServerProcess limited(env);
  ASSERT_TRUE(limited.Start()) << limited.Log();
  int ok = 0;
  HttpResult refused;
  for (int i = 0; i < 6; ++i) {
    auto r = Http(limited.port(), "GET", "/api/public/traces", "", auth_);
    if (r.status == 200) {
      ++ok;
    } else {
      refused = r;
    }
  }
  EXPECT_EQ(ok, 3) << "the burst";
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.headers["Retry-After"], "1");
  auto body = boost::json::parse(refused.body);
  EXPECT_EQ(body.at("code"), "TOO_MANY_REQUESTS");
  EXPECT_TRUE(body.at("data").is_null());
  EXPECT_EQ(body.at("meta").at("rate_limit").at("remaining").to_number<int>(), 0);
  // Another credential has its own bucket; ingest is never rate-limited.
  EXPECT_EQ(Http(limited.port(), "GET", "/api/public/traces", "",
                 {{"Authorization", "Basic cGstZTJlOnNrLWUyZQ=="}})
                .status,
            200);
  EXPECT_EQ(Http(limited.port(), "POST", "/v1/l/batch", "{}", auth_json_).status, 200);
  // Unauthenticated requests consume nothing and see 401, not 429.
  EXPECT_EQ(Http(limited.port(), "GET", "/api/public/traces").status, 401);

  auto stats = Http(limited.port(), "GET", "/api/internal/rate_limit_stats", "", auth_);
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.body.find(kToken), std::string::npos) << "no part of the token is shown";
  EXPECT_EQ(stats.body.find("e2e-tok"), std::string::npos);
  auto s = boost::json::parse(stats.body);
  EXPECT_EQ(s.at("total_rejected").to_number<int>(), 3);
  EXPECT_EQ(s.at("rate_limit_qps").to_number<int>(), 1);
  EXPECT_EQ(s.at("top_rejected_tokens").as_array().at(0).at("token"), "bearer:***");
  EXPECT_EQ(Http(limited.port(), "GET", "/api/internal/rate_limit_stats").status, 401);
}

TEST(ServerBinary, CompatModeOpensProjectsOnlyWithoutKeyPair) {
  testing::TestDatabase db;
  testing::TempDir wal;
  testing::ServerProcess server({{"DATABASE_URL", db.url()},
                                 {"API_BEARER_TOKEN", kToken},
                                 {"XTRACE_WAL_DIR", wal.path() + "/wal"},
                                 {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "true"}});
  ASSERT_TRUE(server.Start()) << server.Log();
  EXPECT_EQ(Http(server.port(), "GET", "/api/public/projects").status, 200);
  EXPECT_EQ(Http(server.port(), "GET", "/api/public/projects", "",
                 {{"Authorization", "Basic YW55OnRoaW5n"}})
                .status,
            200);
  EXPECT_EQ(
      Http(server.port(), "GET", "/api/public/projects", "", {{"Authorization", "Bearer wrong"}})
          .status,
      401);
  EXPECT_EQ(Http(server.port(), "GET", "/api/public/traces").status, 401) << "only projects opens";
}

// Started with BIND_ADDR port 0, the server names the port it got in its log as well as in its
// port file (which the fixture read to reach it).
TEST_F(ServerTest, ReportsThePortItWasGiven) {
  ASSERT_NE(server_->port(), 0);
  EXPECT_NE(server_->Log().find("listening on http://127.0.0.1:" + std::to_string(server_->port()) +
                                "\n"),
            std::string::npos)
      << server_->Log();
}

// --help prints every setting with its default and description (the lines config_test.cpp
// checks), and exits 0.
TEST(ServerBinary, HelpListsEverySettingAndExitsZero) {
  const auto help = testing::RunCommand(testing::ServerBinary() + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find(server::SettingsHelp()), std::string::npos) << help.output;
  for (const server::Setting& s : server::Settings()) {
    EXPECT_NE(help.output.find("\n  " + std::string(s.name) + " ("), std::string::npos) << s.name;
  }
}

// Whoever waits for the port file would wait in vain: the server stops at once instead.
TEST(ServerBinary, APortFileThatCannotBeWrittenStopsTheServer) {
  testing::TempDir dir;
  // A clean environment, as ServerProcess gives, with the sanitizer settings of the run.
  std::string env = "env -i PATH=/usr/bin:/bin";
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) env += std::string(" ") + name + "='" + value + "'";
  }
  // No database is needed to get this far: the server listens whatever PostgreSQL does.
  const auto run = testing::RunCommand(
      env + " DATABASE_URL=postgresql://x@127.0.0.1:1/db API_BEARER_TOKEN=t XTRACE_WAL_DIR=" +
      dir.path() + "/wal BIND_ADDR=127.0.0.1:0 XTRACE_PORT_FILE=" + dir.path() +
      "/missing/port timeout 60 " + testing::ServerBinary());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("XTRACE_PORT_FILE: cannot write " + dir.path() + "/missing/port"),
            std::string::npos)
      << run.output;
}

TEST(ServerBinary, BadConfigurationExitsNonZeroNamingTheVariable) {
  testing::ServerProcess bad({{"DATABASE_URL", "postgresql://x@127.0.0.1/db"},
                              {"API_BEARER_TOKEN", "t"},
                              {"RATE_LIMIT_QPS", "0"}});
  EXPECT_FALSE(bad.Start());
  EXPECT_NE(bad.Log().find("RATE_LIMIT_QPS"), std::string::npos) << bad.Log();
}

}  // namespace
}  // namespace xtrace
