#include "server/config.hpp"

#include <spdlog/fmt/fmt.h>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <thread>

namespace xtrace::server {
namespace {

using common::Error;

Error Invalid(std::string_view var, std::string_view why) {
  return Error{common::ErrorCode::kBadParameter, fmt::format("{}: {}", var, why), std::string(var)};
}

// Unset and empty are the same: an empty value never configures anything.
std::optional<std::string> NonEmpty(const GetEnv& getenv, std::string_view name) {
  auto v = getenv(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

template <class Int>
common::Result<Int> PositiveInteger(const GetEnv& getenv, std::string_view name, Int fallback,
                                    Int max = std::numeric_limits<Int>::max()) {
  auto v = NonEmpty(getenv, name);
  if (!v) return fallback;
  Int n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n == 0 || n > max) {
    return Invalid(name, fmt::format("must be an integer from 1 to {}, got '{}'", max, *v));
  }
  return n;
}

common::Result<bool> OnOff(const GetEnv& getenv, std::string_view name, bool fallback) {
  auto v = NonEmpty(getenv, name);
  if (!v) return fallback;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (s == "1" || s == "true" || s == "on") return true;
  if (s == "0" || s == "false" || s == "off") return false;
  return Invalid(name, "must be on/off, true/false or 1/0, got '" + *v + "'");
}

std::string Mask(const std::optional<std::string>& secret) {
  if (!secret) return "(unset)";
  return fmt::format("(set, {} chars)", secret->size());
}

}  // namespace

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  switch (text.back()) {
    case 's':
      unit = 1;
      text.remove_suffix(1);
      break;
    case 'm':
      unit = 60;
      text.remove_suffix(1);
      break;
    case 'h':
      unit = 3600;
      text.remove_suffix(1);
      break;
    case 'd':
      unit = 86400;
      text.remove_suffix(1);
      break;
    default: break;
  }
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n <= 0 ||
      n > 3650 * 86400 / unit) {
    return std::nullopt;
  }
  return std::chrono::seconds(n * unit);
}

std::optional<std::string> ProcessEnv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

common::Result<Config> LoadConfig(const GetEnv& getenv) {
  Config c;
  auto db = NonEmpty(getenv, "DATABASE_URL");
  if (!db) return Invalid("DATABASE_URL", "is required (a PostgreSQL connection URL)");
  if (!db->starts_with("postgres://") && !db->starts_with("postgresql://")) {
    return Invalid("DATABASE_URL", "must start with postgres:// or postgresql://");
  }
  c.database_url = *db;

  auto token = NonEmpty(getenv, "API_BEARER_TOKEN");
  if (!token) return Invalid("API_BEARER_TOKEN", "is required and must not be empty");
  c.bearer_token = *token;

  if (auto bind = NonEmpty(getenv, "BIND_ADDR")) {
    const auto colon = bind->rfind(':');
    if (colon == std::string::npos)
      return Invalid("BIND_ADDR", "must be host:port, got '" + *bind + "'");
    std::string host = bind->substr(0, colon);
    const std::string port = bind->substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host == "localhost") host = "127.0.0.1";
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec)
      return Invalid("BIND_ADDR", "host must be an IP address or localhost, got '" + *bind + "'");
    unsigned p = 0;
    const auto [end, pec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (pec != std::errc() || end != port.data() + port.size() || p > 65535) {
      return Invalid("BIND_ADDR", "port must be 0..65535, got '" + *bind + "'");
    }
    c.bind_host = host;
    c.bind_port = static_cast<uint16_t>(p);
  }

  if (auto project = getenv("DEFAULT_PROJECT_ID")) {
    if (project->empty()) return Invalid("DEFAULT_PROJECT_ID", "must not be empty");
    c.default_project_id = *project;
  }

  c.public_key = NonEmpty(getenv, "XTRACE_PUBLIC_KEY");
  if (!c.public_key) c.public_key = NonEmpty(getenv, "LANGFUSE_PUBLIC_KEY");
  c.secret_key = NonEmpty(getenv, "XTRACE_SECRET_KEY");
  if (!c.secret_key) c.secret_key = NonEmpty(getenv, "LANGFUSE_SECRET_KEY");
  if (c.public_key.has_value() != c.secret_key.has_value()) {
    return Invalid(c.public_key ? "XTRACE_SECRET_KEY" : "XTRACE_PUBLIC_KEY",
                   "Basic auth needs both XTRACE_PUBLIC_KEY and XTRACE_SECRET_KEY (or their "
                   "LANGFUSE_ fallbacks)");
  }

  auto qps = PositiveInteger<uint32_t>(getenv, "RATE_LIMIT_QPS", 20);
  if (!qps) return qps.error();
  c.rate_limit_qps = *qps;
  auto burst = PositiveInteger<uint32_t>(getenv, "RATE_LIMIT_BURST", 40);
  if (!burst) return burst.error();
  c.rate_limit_burst = *burst;
  auto body = PositiveInteger<uint64_t>(getenv, "XTRACE_MAX_REQUEST_BODY_BYTES", 20u << 20,
                                        uint64_t{1} << 32);
  if (!body) return body.error();
  c.max_request_body_bytes = *body;

  if (auto compat = NonEmpty(getenv, "XTRACE_ALLOW_UNAUTHENTICATED_COMPAT")) {
    std::string v = *compat;
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (v == "1" || v == "true") {
      c.allow_unauthenticated_compat = true;
    } else if (v != "0" && v != "false") {
      return Invalid("XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "must be 1, true, 0 or false");
    }
  }

  if (auto wal = NonEmpty(getenv, "XTRACE_WAL_DIR")) c.wal_dir = *wal;

  auto http_threads = PositiveInteger<unsigned>(
      getenv, "XTRACE_HTTP_THREADS", std::max(2u, std::thread::hardware_concurrency()), 256);
  if (!http_threads) return http_threads.error();
  c.http_threads = *http_threads;
  auto query_threads = PositiveInteger<unsigned>(getenv, "XTRACE_QUERY_THREADS", 4, 256);
  if (!query_threads) return query_threads.error();
  c.query_threads = *query_threads;

  auto read_timeout = PositiveInteger<uint32_t>(getenv, "XTRACE_HTTP_READ_TIMEOUT_MS", 30000);
  if (!read_timeout) return read_timeout.error();
  c.read_timeout = std::chrono::milliseconds(*read_timeout);
  auto stmt_timeout = PositiveInteger<uint32_t>(getenv, "XTRACE_QUERY_TIMEOUT_MS", 5000);
  if (!stmt_timeout) return stmt_timeout.error();
  c.statement_timeout = std::chrono::milliseconds(*stmt_timeout);
  auto grace = PositiveInteger<uint32_t>(getenv, "XTRACE_SHUTDOWN_GRACE_MS", 10000);
  if (!grace) return grace.error();
  c.shutdown_grace = std::chrono::milliseconds(*grace);

  auto wal_max = PositiveInteger<uint64_t>(getenv, "XTRACE_WAL_MAX_BYTES", c.wal_max_bytes);
  if (!wal_max) return wal_max.error();
  c.wal_max_bytes = *wal_max;
  if (auto v = NonEmpty(getenv, "XTRACE_WAL_MIN_FREE_BYTES")) {
    // Zero is allowed here: it turns the free-space floor off.
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size()) {
      return Invalid("XTRACE_WAL_MIN_FREE_BYTES", "must be a byte count, got '" + *v + "'");
    }
    c.wal_min_free_bytes = n;
  }
  if (auto v = NonEmpty(getenv, "XTRACE_WAL_RETENTION")) {
    auto d = ParseDuration(*v);
    if (!d) {
      return Invalid("XTRACE_WAL_RETENTION",
                     "must be a positive duration such as 3600s, 90m, 24h or 7d, got '" + *v + "'");
    }
    c.wal_retention = *d;
  }
  auto sync = OnOff(getenv, "XTRACE_WAL_SYNC", true);
  if (!sync) return sync.error();
  c.wal_sync = *sync;
  auto inflight =
      PositiveInteger<uint64_t>(getenv, "XTRACE_MAX_INFLIGHT_BYTES", c.max_inflight_bytes);
  if (!inflight) return inflight.error();
  c.max_inflight_bytes = *inflight;

  auto chunk = PositiveInteger<uint64_t>(getenv, "XTRACE_PROJECTOR_CHUNK_BYTES",
                                         c.projector_chunk_bytes, uint64_t{1} << 30);
  if (!chunk) return chunk.error();
  c.projector_chunk_bytes = *chunk;
  auto projector_timeout =
      PositiveInteger<uint32_t>(getenv, "XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS",
                                static_cast<uint32_t>(c.projector_statement_timeout.count()));
  if (!projector_timeout) return projector_timeout.error();
  c.projector_statement_timeout = std::chrono::milliseconds(*projector_timeout);

  if (auto level = NonEmpty(getenv, "XTRACE_LOG_LEVEL")) {
    static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                   "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), *level) == std::end(kLevels)) {
      return Invalid("XTRACE_LOG_LEVEL",
                     "must be one of trace, debug, info, warn, error, critical, off");
    }
    c.log_level = *level;
  }
  return c;
}

std::string DescribeConfig(const Config& c) {
  // The URL may carry a password: show only what follows the '@' (host, port, database).
  std::string db = c.database_url;
  if (const auto at = db.rfind('@'); at != std::string::npos) {
    db = db.substr(0, db.find("://") + 3) + "***@" + db.substr(at + 1);
  }
  return fmt::format(
      "bind={}:{} database={} project={} bearer_token=(set, {} chars) public_key={} "
      "secret_key={} rate_limit={}qps/burst {} max_body={}B compat_unauthenticated={} "
      "wal_dir={} http_threads={} query_threads={} read_timeout={}ms query_timeout={}ms "
      "shutdown_grace={}ms log_level={} wal_max_bytes={} wal_min_free_bytes={} wal_retention={}s "
      "wal_sync={} max_inflight_bytes={} projector_chunk_bytes={} "
      "projector_statement_timeout={}ms",
      c.bind_host, c.bind_port, db, c.default_project_id, c.bearer_token.size(),
      c.public_key ? *c.public_key : "(unset)", Mask(c.secret_key), c.rate_limit_qps,
      c.rate_limit_burst, c.max_request_body_bytes, c.allow_unauthenticated_compat, c.wal_dir,
      c.http_threads, c.query_threads, c.read_timeout.count(), c.statement_timeout.count(),
      c.shutdown_grace.count(), c.log_level, c.wal_max_bytes, c.wal_min_free_bytes,
      c.wal_retention.count(), c.wal_sync ? "on" : "OFF (unsafe: benchmarks only)",
      c.max_inflight_bytes, c.projector_chunk_bytes, c.projector_statement_timeout.count());
}

}  // namespace xtrace::server
