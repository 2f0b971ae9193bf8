// Fault tests of the durability promise, on the real server binary and a real PostgreSQL:
// kill -9 under load, a database outage mid-stream, a torn WAL tail, and a WAL over its cap.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "support/http_client.hpp"
#include "support/pg.hpp"
#include "support/raw_http.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

using testing::Http;
using testing::HttpResult;
using testing::WaitUntil;

constexpr char kToken[] = "fault-token";
const std::map<std::string, std::string> kAuthJson = {
    {"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}};
const std::map<std::string, std::string> kAuth = {
    {"Authorization", std::string("Bearer ") + kToken}};

// Trace i of client c: a unique trace id and its one observation id.
std::string TraceId(int client, int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x", client, i);
  return buf;
}
std::string ObservationId(int client, int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-9000-%012x", client, i);
  return buf;
}
std::string Batch(int client, int i) {
  return R"({"trace":{"id":")" + TraceId(client, i) + R"(","name":"t","userId":"u"},
             "observations":[{"id":")" +
         ObservationId(client, i) + R"(","traceId":")" + TraceId(client, i) +
         R"(","type":"GENERATION","model":"m","totalTokens":3}]})";
}

std::map<std::string, std::string> ServerEnv(const std::string& db_url, const std::string& wal) {
  return {{"DATABASE_URL", db_url},
          {"API_BEARER_TOKEN", kToken},
          {"XTRACE_WAL_DIR", wal},
          {"XTRACE_WAL_MIN_FREE_BYTES", "0"},
          {"XTRACE_LOG_LEVEL", "info"}};
}

boost::json::value Status(uint16_t port) {
  auto r = Http(port, "GET", "/api/internal/status", "", kAuth);
  return r.status == 200 ? boost::json::parse(r.body) : boost::json::value();
}

// Waits until the projector has folded everything the WAL holds.
bool WaitDrained(uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  return WaitUntil(
      [&] {
        auto s = Status(port);
        return s.is_object() && s.at("projector").at("lagRecords").to_number<int64_t>() == 0 &&
               s.at("projector").at("postgres") == "up";
      },
      timeout, std::chrono::milliseconds(20));
}

// Trace id -> number of its observations, straight from PostgreSQL.
std::map<std::string, int> Projected(const std::string& db_url) {
  pqxx::connection conn(db_url);
  pqxx::work txn(conn);
  std::map<std::string, int> out;
  for (const auto& row :
       txn.exec("SELECT t.id::text, (SELECT count(*) FROM observations o WHERE o.trace_id = t.id) "
                "FROM traces t")) {
    out[row[0].c_str()] = row[1].as<int>();
  }
  return out;
}

TEST(Fault, KillMinus9UnderConcurrentLoadLosesNoAcknowledgedBatch) {
  testing::TestDatabase db;
  testing::TempDir wal;
  const auto env = ServerEnv(db.url(), wal.path() + "/wal");
  auto server = std::make_unique<testing::ServerProcess>(env);
  ASSERT_TRUE(server->Start()) << server->Log();
  std::atomic<uint16_t> port{server->port()};
  std::atomic<int> servers_started{1};  // moves after `port` names the new server

  constexpr int kClients = 8;
  constexpr int kRounds = 5;
  constexpr size_t kAcksPerServer = 40;  // each server is killed under load, not before it
  std::mutex mu;
  std::set<std::string> acked, refused;  // refused: a complete non-2xx answer
  std::atomic<size_t> acked_count{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  struct StopClients {  // also when an assertion below returns early
    std::atomic<bool>& stop;
    std::vector<std::thread>& clients;
    ~StopClients() {
      stop = true;
      for (auto& t : clients) {
        if (t.joinable()) t.join();
      }
    }
  } stop_clients{stop, clients};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load() && i < 100000; ++i) {
        const int server_number = servers_started.load();
        const auto r = Http(port.load(), "POST", "/v1/l/batch", Batch(c, i), kAuthJson);
        if (r.status == 0) {
          // No answer: the server was killed. Wait for its replacement rather than spin against
          // a closed port while it starts.
          (void)WaitUntil([&] { return stop.load() || servers_started.load() != server_number; });
          continue;
        }
        std::lock_guard lock(mu);
        if (r.status == 200) {
          acked.insert(TraceId(c, i));
          acked_count++;
        } else {
          refused.insert(TraceId(c, i));
        }
      }
    });
  }
  // Lets the load run on the current server until it has acknowledged kAcksPerServer batches.
  const auto load_reached_the_server = [&] {
    const size_t before = acked_count.load();
    return WaitUntil([&] { return acked_count.load() >= before + kAcksPerServer; });
  };
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(load_reached_the_server()) << "round " << round << ": no load\n" << server->Log();
    server->Kill();  // SIGKILL: no flush, no goodbye
    server = std::make_unique<testing::ServerProcess>(env);
    ASSERT_TRUE(server->Start()) << server->Log();
    port = server->port();
    servers_started++;
  }
  ASSERT_TRUE(load_reached_the_server()) << "no load after the last restart\n" << server->Log();
  stop = true;
  for (auto& t : clients) t.join();

  ASSERT_TRUE(WaitDrained(server->port())) << server->Log();
  const auto projected = Projected(db.url());
  ASSERT_GT(acked.size(), 50u) << "the load did not get going";
  for (const auto& id : acked) {
    auto it = projected.find(id);
    ASSERT_NE(it, projected.end()) << "acknowledged batch " << id << " was lost";
    EXPECT_EQ(it->second, 1) << id;
  }
  for (const auto& id : refused) {
    EXPECT_EQ(projected.count(id), 0u) << "refused batch " << id << " was applied";
  }
  // Whatever was applied was applied whole: never a trace without its observation.
  for (const auto& [id, observations] : projected) EXPECT_EQ(observations, 1) << id;
  auto list =
      boost::json::parse(Http(server->port(), "GET", "/api/public/traces?limit=1", "", kAuth).body);
  EXPECT_EQ(list.at("meta").at("totalItems").to_number<int64_t>(),
            static_cast<int64_t>(projected.size()));
}

TEST(Fault, DatabaseOutageMidStreamLosesNothing) {
  testing::PrivateCluster pg;
  testing::TempDir wal;
  testing::ServerProcess server(ServerEnv(pg.url(), wal.path() + "/wal"));
  ASSERT_TRUE(server.Start()) << server.Log();

  int next = 0;
  auto post = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      auto r = Http(server.port(), "POST", "/v1/l/batch", Batch(0, next), kAuthJson);
      ASSERT_EQ(r.status, 200) << "batch " << next << ": " << r.body;
    }
  };
  post(20);
  pg.Stop();
  post(50);  // acknowledged into the WAL while PostgreSQL is down
  auto ready = Http(server.port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << "ingest is available, so the node stays ready";
  EXPECT_EQ(Http(server.port(), "GET", "/api/public/traces", "", kAuth).status, 503);
  pg.Start();
  post(20);
  ASSERT_TRUE(WaitDrained(server.port())) << server.Log();
  const auto projected = Projected(pg.url());
  EXPECT_EQ(projected.size(), 90u);
  for (int i = 0; i < next; ++i) EXPECT_EQ(projected.count(TraceId(0, i)), 1u) << i;
}

// The newest RocksDB log file of the WAL directory.
std::filesystem::path NewestLogFile(const std::string& dir) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log" &&
        (newest.empty() || e.path().filename() > newest.filename())) {
      newest = e.path();
    }
  }
  return newest;
}

TEST(Fault, TornWalTailOpensAndLosesNothingAcknowledged) {
  testing::TestDatabase db;
  testing::TempDir wal;
  const auto env = ServerEnv(db.url(), wal.path() + "/wal");
  auto server = std::make_unique<testing::ServerProcess>(env);
  ASSERT_TRUE(server->Start()) << server->Log();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(Http(server->port(), "POST", "/v1/l/batch", Batch(1, i), kAuthJson).status, 200);
  }
  ASSERT_TRUE(WaitDrained(server->port()));
  server->Kill();

  // A crash mid-write leaves a torn last entry: cut a few bytes off the newest log file.
  const auto log_file = NewestLogFile(wal.path() + "/wal");
  ASSERT_FALSE(log_file.empty());
  const auto size = std::filesystem::file_size(log_file);
  ASSERT_GT(size, 16u);
  std::filesystem::resize_file(log_file, size - 5);

  server = std::make_unique<testing::ServerProcess>(env);
  ASSERT_TRUE(server->Start()) << "the server must open a torn WAL\n" << server->Log();
  // New batches are projected too: the WAL never reuses a sequence the projector consumed.
  for (int i = 30; i < 35; ++i) {
    ASSERT_EQ(Http(server->port(), "POST", "/v1/l/batch", Batch(1, i), kAuthJson).status, 200);
  }
  ASSERT_TRUE(WaitDrained(server->port())) << server->Log();
  const auto projected = Projected(db.url());
  for (int i = 0; i < 35; ++i) EXPECT_EQ(projected.count(TraceId(1, i)), 1u) << i;

  // And a torn tail of records not yet projected: garbage after the last intact entry.
  server->Kill();
  {
    std::FILE* f = std::fopen(NewestLogFile(wal.path() + "/wal").c_str(), "ab");
    ASSERT_NE(f, nullptr);
    const char garbage[] = "\x17\x42torn-entry-without-a-valid-checksum";
    std::fwrite(garbage, 1, sizeof garbage, f);
    std::fclose(f);
  }
  server = std::make_unique<testing::ServerProcess>(env);
  ASSERT_TRUE(server->Start()) << server->Log();
  EXPECT_EQ(Status(server->port()).at("wal").at("lastSequence").to_number<int64_t>(), 35);
}

TEST(Fault, WalOverItsCapAnswers503ThenRecovers) {
  testing::PrivateCluster pg;
  testing::TempDir wal;
  auto env = ServerEnv(pg.url(), wal.path() + "/wal");
  env["XTRACE_WAL_MAX_BYTES"] = "65536";
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << server.Log();
  pg.Stop();  // nothing drains: the backlog can only grow

  HttpResult refused;
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    auto r = Http(server.port(), "POST", "/v1/l/batch", Batch(2, i), kAuthJson);
    if (r.status != 200) {
      refused = r;
      break;
    }
    ++accepted;
  }
  ASSERT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(boost::json::parse(refused.body).at("code"), "WAL_FULL");
  EXPECT_EQ(refused.headers["Retry-After"], "1");
  EXPECT_GT(accepted, 10);
  EXPECT_EQ(Http(server.port(), "GET", "/readyz").status, 503);

  pg.Start();  // the projector drains the backlog and ingest recovers by itself
  int status = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        status = Http(server.port(), "POST", "/v1/l/batch", Batch(2, accepted), kAuthJson).status;
        return status == 200;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(20)))
      << "still " << status << " after the backlog drained\n"
      << server.Log();
  ASSERT_TRUE(WaitDrained(server.port()));
  EXPECT_EQ(Projected(pg.url()).size(), static_cast<size_t>(accepted + 1));
}

// ENOSPC for real: the WAL on a small tmpfs (needs root, as CI runs; skipped otherwise).
TEST(Fault, FullDiskAnswers503AndRecoversWhenSpaceReturns) {
  testing::TestDatabase db;
  testing::TempDir mount_point;
  const std::string mount =
      "mount -t tmpfs -o size=6m tmpfs " + mount_point.path() + " 2>/dev/null";
  if (std::system(mount.c_str()) != 0) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  struct Unmount {
    std::string path;
    ~Unmount() { std::system(("umount -l " + path + " 2>/dev/null").c_str()); }
  } unmount{mount_point.path()};

  auto env = ServerEnv(db.url(), mount_point.path() + "/wal");
  env["XTRACE_WAL_MIN_FREE_BYTES"] = "0";                          // let the disk really fill up
  env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/none";  // nothing drains meanwhile
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << server.Log();

  // About 60 KB per batch: a 6 MiB disk fills within a few hundred.
  const std::string filler(60000, 'x');
  auto big_batch = [&](int i) {
    return R"({"trace":{"id":")" + TraceId(3, i) + R"(","input":")" + filler + R"("}})";
  };
  int acked = 0;
  HttpResult refused;
  for (int i = 0; i < 1000; ++i) {
    auto r = Http(server.port(), "POST", "/v1/l/batch", big_batch(i), kAuthJson);
    if (r.status != 200) {
      refused = r;
      break;
    }
    ++acked;
  }
  ASSERT_EQ(refused.status, 503) << refused.body << server.Log();
  EXPECT_EQ(refused.headers["Retry-After"], "1");
  EXPECT_EQ(boost::json::parse(refused.body).at("code"), "WAL_UNAVAILABLE") << refused.body;
  EXPECT_EQ(Http(server.port(), "GET", "/readyz").status, 503);
  EXPECT_TRUE(Http(server.port(), "GET", "/healthz").status == 200) << "the process stays up";

  // Space returns: the WAL resumes by itself and accepts again.
  ASSERT_EQ(std::system(("mount -o remount,size=64m " + mount_point.path()).c_str()), 0);
  int status = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        status = Http(server.port(), "POST", "/v1/l/batch", big_batch(acked), kAuthJson).status;
        return status == 200;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(20)))
      << "still " << status << " after space returned\n"
      << server.Log();
  ++acked;
  // Every acknowledged batch is in the log: none was lost to the failed writes.
  EXPECT_EQ(Status(server.port()).at("wal").at("lastSequence").to_number<int64_t>(), acked);
  server.Stop();
  testing::ServerProcess again(env);
  ASSERT_TRUE(again.Start()) << again.Log();
  EXPECT_EQ(Status(again.port()).at("wal").at("lastSequence").to_number<int64_t>(), acked);
}

// Overload: request bytes in flight are bounded, and the excess is refused before its body.
TEST(Fault, InflightBytesAreBounded) {
  testing::TestDatabase db;
  testing::TempDir wal;
  auto env = ServerEnv(db.url(), wal.path() + "/wal");
  env["XTRACE_MAX_INFLIGHT_BYTES"] = "100000";
  testing::ServerProcess server(env);
  ASSERT_TRUE(server.Start()) << server.Log();

  // A client that declares 90 kB and has not sent the body yet holds its share. It asks for
  // `100 Continue`, which the server sends once it has admitted the request (reserved its
  // bytes): that answer is the moment the reservation is known to be in place.
  testing::RawConnection slow(server.port(), std::chrono::seconds(10));
  slow.Send(std::string("POST /v1/l/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
            "\r\nContent-Type: application/json\r\nContent-Length: 90000\r\n"
            "Expect: 100-continue\r\n\r\n");
  const auto interim = slow.Read();
  ASSERT_EQ(interim.status, 100) << "no 100 Continue: " << interim.body;
  // ...so a second 20 kB request does not fit: 503 at once.
  const std::string body =
      R"({"trace":{"id":")" + TraceId(4, 0) + R"(","input":")" + std::string(20000, 'y') + R"("}})";
  auto r = Http(server.port(), "POST", "/v1/l/batch", body, kAuthJson);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("XTRACE_MAX_INFLIGHT_BYTES"), std::string::npos) << r.body;
  slow.Close();  // the reservation is released with the connection
  EXPECT_TRUE(WaitUntil(
      [&] {
        return (r = Http(server.port(), "POST", "/v1/l/batch", body, kAuthJson)).status == 200;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(20)))
      << r.status << " " << r.body;
}

}  // namespace
}  // namespace xtrace
