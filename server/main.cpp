// xtrace-server: the composition root. Reads the configuration, opens the WAL, starts the
// projector and the HTTP front end, and stops them in reverse order on SIGTERM/SIGINT.

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/logging.hpp"
#include "ingest/ingestor.hpp"
#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/cursor.hpp"
#include "projector/projector.hpp"
#include "query/pool.hpp"
#include "query/traces.hpp"
#include "schema/migrator.hpp"
#include "server/config.hpp"
#include "server/http_server.hpp"
#include "server/router.hpp"
#include "server/version.hpp"
#include "wal/log.hpp"

namespace net = boost::asio;
using namespace xtrace;

namespace {

// XTRACE_PORT_FILE: the port, in decimal, written to a temporary file beside `path` and renamed
// over it, so a reader never sees a partial file. Whoever starts the server with port 0 learns
// the port from it once the server listens.
bool WritePortFile(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    out.close();
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (!ec) return true;
  std::filesystem::remove(tmp, ec);
  return false;
}

// Waits for in-flight requests to be answered (bounded by the grace period), then stops the
// I/O threads.
void DrainThenStop(net::steady_timer& timer, server::HttpServer& http, net::io_context& ioc,
                   std::chrono::steady_clock::time_point deadline) {
  if (http.InFlight() == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (http.InFlight() != 0) {
      spdlog::warn("shutdown: {} requests still in flight after the grace period", http.InFlight());
    }
    ioc.stop();
    return;
  }
  timer.expires_after(std::chrono::milliseconds(20));
  timer.async_wait([&timer, &http, &ioc, deadline](boost::system::error_code) {
    DrainThenStop(timer, http, ioc, deadline);
  });
}

int Run(const server::Config& config) {
  common::SetupLogging(*common::ParseLogLevel(config.log_level));
  spdlog::info("xtrace-server {} starting: {}", server::kVersion, server::DescribeConfig(config));

  wal::Options wal_options;
  wal_options.dir = config.wal_dir;
  wal_options.sync = config.wal_sync;
  wal_options.max_backlog_bytes = config.wal_max_bytes;
  wal_options.min_free_disk_bytes = config.wal_min_free_bytes;
  wal_options.retention = config.wal_retention;
  if (!config.wal_sync) {
    spdlog::warn(
        "XTRACE_WAL_SYNC=off: acknowledged batches can be lost on a crash (benchmarks only)");
  }
  auto log = wal::Log::Open(wal_options);
  if (!log) {
    spdlog::critical("{}", log.error().message);
    return 1;
  }

  const pg::Session projector_session =
      pg::SessionFor(pg::Role::kProjector, config.projector_statement_timeout);
  // Migrate before serving reads, and tell the WAL how far it was projected before serving
  // writes: if the log lost records the cursor had consumed (a damaged or restored disk), new
  // records must not reuse those sequence numbers. When PostgreSQL is unreachable or does not
  // answer within the connect timeout, ingest starts anyway (the WAL holds writes) and the
  // projector does both once it connects.
  try {
    const auto quick = pg::ConnectTimeout(config.database_url).value_or(std::chrono::seconds(5));
    auto conn = pg::Connect(config.database_url, projector_session);
    bool pending = false;
    {
      pg::CallGuard guard(*conn, quick);
      pending = schema::MigrationsPending(*conn);
    }
    if (pending) {
      // PostgreSQL answered promptly just now, so this is a healthy database doing real work:
      // migrations may take long, and get the projector's deadline.
      pg::CallGuard guard(*conn, projector_session.call_deadline());
      schema::ApplyMigrations(*conn);
    }
    pg::CallGuard guard(*conn, quick);
    const auto cursors = projector::LoadCursors(*conn, (*log)->id().ToString());
    (*log)->SetProjected(cursors.least, cursors.furthest);
  } catch (const std::exception& e) {
    spdlog::warn("PostgreSQL unusable at start ({}); ingest continues, projection waits", e.what());
  }

  projector::Options projector_options;
  projector_options.database_url = config.database_url;
  projector_options.session = projector_session;
  projector_options.chunk_bytes = config.projector_chunk_bytes;
  projector::Projector projector(**log, projector_options);
  projector.Start();

  query::ConnectionPool pool({config.database_url, config.query_threads, config.statement_timeout,
                              config.statement_timeout});
  query::TraceQueries traces(pool, config.default_project_id);
  query::MetricQueries metrics(pool, config.default_project_id);
  server::RateLimiter limiter(config.rate_limit_qps, config.rate_limit_burst);
  ingest::Ingestor ingestor(**log, config.default_project_id);
  net::thread_pool blocking(config.query_threads);
  server::Router router(config, **log, projector, ingestor, traces, metrics, limiter, blocking);

  net::io_context ioc(static_cast<int>(config.http_threads));
  std::optional<server::HttpServer> http;
  try {
    http.emplace(ioc,
                 net::ip::tcp::endpoint(net::ip::make_address(config.bind_host), config.bind_port),
                 router,
                 server::HttpLimits{config.max_request_body_bytes, config.max_inflight_bytes,
                                    config.read_timeout});
  } catch (const std::exception& e) {
    spdlog::critical("BIND_ADDR: cannot listen on {}:{}: {}", config.bind_host, config.bind_port,
                     e.what());
    return 1;
  }
  http->Start();
  spdlog::info("listening on http://{}:{}", config.bind_host, http->port());
  if (config.port_file && !WritePortFile(*config.port_file, http->port())) {
    spdlog::critical("XTRACE_PORT_FILE: cannot write {}", *config.port_file);
    return 1;
  }

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain_timer(ioc);
  // Calls still waiting on PostgreSQL this close to the end of the grace period are abandoned,
  // so a stuck database cannot hold up the shutdown; the reserve is for closing the WAL.
  pg::Clock::time_point abandon_db_at = pg::Clock::time_point::max();
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("shutdown: signal {}; no new connections, finishing requests in flight", signal);
    const auto now = std::chrono::steady_clock::now();
    abandon_db_at = now + config.shutdown_grace -
                    std::min<std::chrono::milliseconds>(config.shutdown_grace / 4,
                                                        std::chrono::milliseconds(1000));
    pool.Close(abandon_db_at);
    http->StopAccepting();
    DrainThenStop(drain_timer, *http, ioc, now + config.shutdown_grace);
  });

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < config.http_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  blocking.join();
  projector.Stop(abandon_db_at);
  (*log)->Close();
  spdlog::info("shutdown: complete (WAL last sequence {}, projected {})", (*log)->LastSequence(),
               projector.status().projected_seq);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xtrace-server: durable trace and metrics ingest for LLM applications"};
  app.footer("\n" + server::SettingsHelp());
  app.set_version_flag("--version", std::string("xtrace-server ") + server::kVersion);
  CLI11_PARSE(app, argc, argv);

  auto config = server::LoadConfig(server::ProcessEnv);
  if (!config) {
    std::fprintf(stderr, "xtrace-server: invalid configuration: %s\n",
                 config.error().message.c_str());
    return 2;
  }
  try {
    return Run(*config);
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
