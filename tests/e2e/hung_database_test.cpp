// A database that hangs is an outage like any other. For each way PostgreSQL can fail — refusing
// connections, accepting them and never answering, going silent in the middle of a transaction,
// being paused — the real server binary must listen, acknowledge ingest at its usual latency
// (the WAL needs no database), answer /readyz at once, stop within its grace period on SIGTERM,
// and project everything by itself once PostgreSQL is back.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/server_process.hpp"
#include "support/tcp_proxy.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

using testing::Http;
using testing::TcpProxy;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Mode = TcpProxy::Mode;

constexpr char kToken[] = "hung-token";
const std::map<std::string, std::string> kAuthJson = {
    {"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}};
const std::map<std::string, std::string> kAuth = {
    {"Authorization", std::string("Bearer ") + kToken}};

// Short statement timeouts, so each state is reached and left within seconds (the client-side
// deadline adds 2 s to each). The URLs carry no connection parameters: what the server adds by
// itself (connect timeout 5 s, keepalives) is under test. The grace exceeds the connect timeout.
constexpr milliseconds kGrace{8000};
// An acknowledgement needs only an fsync; a second is far above normal even on a busy machine.
constexpr milliseconds kNormalLatency{1000};

std::map<std::string, std::string> Env(const std::string& db_url, const std::string& wal) {
  return {{"DATABASE_URL", db_url},
          {"API_BEARER_TOKEN", kToken},
          {"XTRACE_WAL_DIR", wal},
          {"XTRACE_WAL_MIN_FREE_BYTES", "0"},
          {"XTRACE_QUERY_TIMEOUT_MS", "1000"},
          {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", "1500"},
          {"XTRACE_SHUTDOWN_GRACE_MS", std::to_string(kGrace.count())}};
}

std::string ProxyUrl(const TcpProxy& proxy, const std::string& db_url) {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(proxy.port()) +
         db_url.substr(db_url.rfind('/'));
}

uint16_t PortOf(const std::string& url) {
  const auto colon = url.rfind(':');
  return static_cast<uint16_t>(std::stoi(url.substr(colon + 1, url.find('/', colon) - colon - 1)));
}

std::string TraceId(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "7e57a11e-0000-4000-8000-%012x", i);
  return buf;
}

// Posts traces [from, to) and checks each is acknowledged at normal latency.
void IngestAtNormalLatency(const testing::ServerProcess& server, int from, int to) {
  for (int i = from; i < to; ++i) {
    const auto body = R"({"trace":{"id":")" + TraceId(i) + R"(","name":"hung"}})";
    const auto t0 = Clock::now();
    const auto r = Http(server.port(), "POST", "/v1/l/batch", body, kAuthJson);
    const auto took = Clock::now() - t0;
    ASSERT_EQ(r.status, 200) << "trace " << i << ": " << r.body;
    EXPECT_LT(took, kNormalLatency) << "trace " << i;
  }
}

void ExpectReadyAtOnce(const testing::ServerProcess& server) {
  const auto t0 = Clock::now();
  const auto r = Http(server.port(), "GET", "/readyz");
  EXPECT_LT(Clock::now() - t0, kNormalLatency);
  EXPECT_EQ(r.status, 200) << r.body;
}

// A read while the database is out answers 503 within its deadlines, not never.
void ExpectReadRefusedInTime(const testing::ServerProcess& server, int trace) {
  const auto t0 = Clock::now();
  const auto r = Http(server.port(), "GET", "/api/public/traces/" + TraceId(trace), "", kAuth);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

void ExpectStopsWithinGrace(testing::ServerProcess& server) {
  const auto t0 = Clock::now();
  const int status = server.StopWithin(kGrace + std::chrono::seconds(20));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  EXPECT_EQ(status, 0) << server.Log();
  EXPECT_LT(took, kGrace) << "SIGTERM took " << took.count() << " ms\n" << server.Log();
}

// Waits until every trace in [from, to) is readable through the API.
void ExpectReadableSoon(const testing::ServerProcess& server, int from, int to) {
  int next = from;  // the traces before it are readable
  const bool all = testing::WaitUntil(
      [&] {
        while (
            next < to &&
            Http(server.port(), "GET", "/api/public/traces/" + TraceId(next), "", kAuth).status ==
                200) {
          ++next;
        }
        return next == to;
      },
      std::chrono::seconds(60));
  ASSERT_TRUE(all) << "trace " << next << " never became readable\n" << server.Log();
}

// The server starts, and serves ingest, while the proxy keeps PostgreSQL out in `outage`; a
// second server (same WAL) does too, and projects everything once the proxy forwards again.
void OutageFromTheStart(Mode outage) {
  testing::TestDatabase db;
  testing::TempDir wal;
  TcpProxy proxy(PortOf(db.url()), outage);
  const auto env = Env(ProxyUrl(proxy, db.url()), wal.path() + "/wal");
  {
    testing::ServerProcess server(env);
    ASSERT_TRUE(server.Start()) << "the server does not listen\n" << server.Log();
    IngestAtNormalLatency(server, 0, 10);
    ExpectReadyAtOnce(server);
    ExpectReadRefusedInTime(server, 0);
    ExpectStopsWithinGrace(server);
  }
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << "the server does not listen\n" << server.Log();
  IngestAtNormalLatency(server, 10, 20);
  proxy.SetMode(Mode::kForward);
  ExpectReadableSoon(server, 0, 20);
  ExpectStopsWithinGrace(server);
}

TEST(HungDatabase, RefusingConnections) {
  OutageFromTheStart(Mode::kRefuse);
}

TEST(HungDatabase, AcceptingConnectionsAndNeverAnswering) {
  OutageFromTheStart(Mode::kBlackHole);
}

TEST(HungDatabase, SilentMidTransaction) {
  testing::TestDatabase db;
  testing::TempDir wal;
  TcpProxy proxy(PortOf(db.url()), Mode::kForward);
  const auto env = Env(ProxyUrl(proxy, db.url()), wal.path() + "/wal");
  {
    testing::ServerProcess server(env);
    ASSERT_TRUE(server.Start()) << server.Log();
    IngestAtNormalLatency(server, 0, 5);
    ExpectReadableSoon(server, 0, 5);  // the projector and a pooled connection are now open
    // Every open connection goes silent: the projector is stuck in the transaction of the
    // next chunk, the pooled connection in the next read.
    proxy.SetMode(Mode::kBlackHole);
    IngestAtNormalLatency(server, 5, 15);
    ExpectReadyAtOnce(server);
    ExpectReadRefusedInTime(server, 0);
    // New connections get through again; the silent ones stay silent, and only the client-side
    // deadline gets the projector and the pool off them.
    proxy.SetMode(Mode::kForward);
    ExpectReadableSoon(server, 0, 15);
    // Silent again, with a chunk in flight at SIGTERM.
    proxy.SetMode(Mode::kBlackHole);
    IngestAtNormalLatency(server, 15, 20);
    ExpectStopsWithinGrace(server);
  }
  // The abandoned chunk never committed; the next start projects it.
  proxy.SetMode(Mode::kForward);
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << server.Log();
  ExpectReadableSoon(server, 0, 20);
  ExpectStopsWithinGrace(server);
}

TEST(HungDatabase, Paused) {
  testing::PrivateCluster pg;
  testing::TempDir wal;
  const auto env = Env(pg.url(), wal.path() + "/wal");
  {
    testing::ServerProcess server(env);
    ASSERT_TRUE(server.Start()) << server.Log();
    IngestAtNormalLatency(server, 0, 5);
    ExpectReadableSoon(server, 0, 5);
    pg.Pause();  // SIGSTOP: the kernel still accepts and acknowledges, nobody answers
    IngestAtNormalLatency(server, 5, 15);
    ExpectReadyAtOnce(server);
    ExpectReadRefusedInTime(server, 0);
    ExpectStopsWithinGrace(server);
  }
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << "the server does not listen\n" << server.Log();
  IngestAtNormalLatency(server, 15, 20);
  ExpectReadyAtOnce(server);
  pg.Resume();
  ExpectReadableSoon(server, 0, 20);
  ExpectStopsWithinGrace(server);
}

}  // namespace
}  // namespace xtrace
