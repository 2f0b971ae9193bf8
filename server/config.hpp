#pragma once
// Server configuration, read once from the environment. Every variable, its default and its
// validation are listed in docs/operations.md; keep the two in step.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace xtrace::server {

struct Config {
  std::string database_url;                     // DATABASE_URL (required)
  std::string bearer_token;                     // API_BEARER_TOKEN (required, non-empty)
  std::string bind_host = "127.0.0.1";          // BIND_ADDR host part
  uint16_t bind_port = 8742;                    // BIND_ADDR port part
  std::string default_project_id = "default";   // DEFAULT_PROJECT_ID
  std::optional<std::string> public_key;        // XTRACE_PUBLIC_KEY, else LANGFUSE_PUBLIC_KEY
  std::optional<std::string> secret_key;        // XTRACE_SECRET_KEY, else LANGFUSE_SECRET_KEY
  uint32_t rate_limit_qps = 20;                 // RATE_LIMIT_QPS
  uint32_t rate_limit_burst = 40;               // RATE_LIMIT_BURST
  uint64_t max_request_body_bytes = 20u << 20;  // XTRACE_MAX_REQUEST_BODY_BYTES
  bool allow_unauthenticated_compat = false;    // XTRACE_ALLOW_UNAUTHENTICATED_COMPAT
  std::string wal_dir = "./data/wal";           // XTRACE_WAL_DIR
  unsigned http_threads = 2;   // XTRACE_HTTP_THREADS (default: hardware threads, at least 2)
  unsigned query_threads = 4;  // XTRACE_QUERY_THREADS (also the pool size)
  std::chrono::milliseconds read_timeout{30000};       // XTRACE_HTTP_READ_TIMEOUT_MS
  std::chrono::milliseconds statement_timeout{5000};   // XTRACE_QUERY_TIMEOUT_MS
  std::chrono::milliseconds shutdown_grace{10000};     // XTRACE_SHUTDOWN_GRACE_MS
  std::string log_level = "info";                      // XTRACE_LOG_LEVEL
  uint64_t wal_max_bytes = uint64_t{4} << 30;          // XTRACE_WAL_MAX_BYTES
  uint64_t wal_min_free_bytes = uint64_t{256} << 20;   // XTRACE_WAL_MIN_FREE_BYTES
  std::chrono::seconds wal_retention{24 * 3600};       // XTRACE_WAL_RETENTION
  bool wal_sync = true;                                // XTRACE_WAL_SYNC (off: benchmarks only)
  uint64_t max_inflight_bytes = uint64_t{256} << 20;   // XTRACE_MAX_INFLIGHT_BYTES
  uint64_t projector_chunk_bytes = uint64_t{8} << 20;  // XTRACE_PROJECTOR_CHUNK_BYTES
  std::chrono::milliseconds projector_statement_timeout{
      300000};  // XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS
};

using GetEnv = std::function<std::optional<std::string>(std::string_view)>;

// Reads and validates every variable. The error message is one line that names the variable and
// what is wrong with it; it never contains a secret.
common::Result<Config> LoadConfig(const GetEnv& getenv);

// "90s", "30m", "24h", "7d" or plain seconds; nullopt when malformed or not positive.
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);

// The process environment, for LoadConfig.
std::optional<std::string> ProcessEnv(std::string_view name);

// The start-up log line: every setting, secrets masked.
std::string DescribeConfig(const Config& config);

}  // namespace xtrace::server
