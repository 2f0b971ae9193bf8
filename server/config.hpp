#pragma once
// Server configuration, read once from the environment.
//
// Every setting is one row of the table in config.cpp (Settings()): its variable, default,
// parser with validation, and a one-line description. That table is the only place a setting is
// defined: LoadConfig, `xtrace-server --help` (SettingsHelp), the start-up line (DescribeConfig)
// and the test that checks docs/operations.md all read it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace xtrace::server {

// The values LoadConfig produced. The defaults live in the settings table, not here: a
// default-constructed Config is not a usable configuration.
struct Config {
  std::string database_url;                       // DATABASE_URL
  std::string bearer_token;                       // API_BEARER_TOKEN
  std::string bind_host;                          // BIND_ADDR host part
  uint16_t bind_port = 0;                         // BIND_ADDR port part (0: any free port)
  std::optional<std::string> port_file;           // XTRACE_PORT_FILE
  std::string default_project_id;                 // DEFAULT_PROJECT_ID
  std::optional<std::string> public_key;          // XTRACE_PUBLIC_KEY, else LANGFUSE_PUBLIC_KEY
  std::optional<std::string> secret_key;          // XTRACE_SECRET_KEY, else LANGFUSE_SECRET_KEY
  uint32_t rate_limit_qps = 0;                    // RATE_LIMIT_QPS
  uint32_t rate_limit_burst = 0;                  // RATE_LIMIT_BURST
  uint64_t max_request_body_bytes = 0;            // XTRACE_MAX_REQUEST_BODY_BYTES
  bool allow_unauthenticated_compat = false;      // XTRACE_ALLOW_UNAUTHENTICATED_COMPAT
  std::string wal_dir;                            // XTRACE_WAL_DIR
  unsigned http_threads = 0;                      // XTRACE_HTTP_THREADS
  unsigned query_threads = 0;                     // XTRACE_QUERY_THREADS (also the pool size)
  std::chrono::milliseconds read_timeout{};       // XTRACE_HTTP_READ_TIMEOUT_MS
  std::chrono::milliseconds statement_timeout{};  // XTRACE_QUERY_TIMEOUT_MS
  std::chrono::milliseconds shutdown_grace{};     // XTRACE_SHUTDOWN_GRACE_MS
  uint64_t wal_max_bytes = 0;                     // XTRACE_WAL_MAX_BYTES
  uint64_t wal_min_free_bytes = 0;                // XTRACE_WAL_MIN_FREE_BYTES
  std::chrono::seconds wal_retention{};           // XTRACE_WAL_RETENTION
  bool wal_sync = false;                          // XTRACE_WAL_SYNC
  uint64_t max_inflight_bytes = 0;                // XTRACE_MAX_INFLIGHT_BYTES
  uint64_t projector_chunk_bytes = 0;             // XTRACE_PROJECTOR_CHUNK_BYTES
  std::chrono::milliseconds projector_statement_timeout{};  // XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS
  std::string log_level;                                    // XTRACE_LOG_LEVEL
};

// What a setting is when its variable is unset (or empty).
struct Default {
  enum class Kind {
    kValue,     // `text`, parsed as if the variable were set to it
    kRequired,  // an error; `text` says why ("is required ...")
    kUnset,     // the Config member stays empty
    kComputed,  // `compute()`, parsed likewise; `text` says what it is in words
  };
  Kind kind = Kind::kUnset;
  std::string_view text;
  std::string (*compute)() = nullptr;
};

// How a setting's value is read into a Config and shown from one.
struct Codec {
  // nullopt when `value` is accepted (and stored); otherwise why not, as a phrase that follows
  // the variable's name ("must be ..., got '...'"). It never repeats a secret.
  std::optional<std::string> (*parse)(std::string_view value, Config& config);
  // The value for the start-up line, as the variable would be set; secrets masked.
  std::string (*show)(const Config& config);
  // Whether a set-but-empty variable is a value (handed to `parse`) rather than unset.
  bool empty_is_a_value = false;
};

struct Setting {
  std::string_view name;
  Default when_unset;
  Codec codec;
  std::string_view description;    // one line, for --help
  std::string_view fallback = {};  // a variable read instead when `name` is unset
  // A rule between settings, checked once this one is read (the ones above it are read too).
  std::optional<common::Error> (*check)(const Config& config) = nullptr;
};

// Every setting, in the order LoadConfig reads and validates them.
std::span<const Setting> Settings();

using GetEnv = std::function<std::optional<std::string>(std::string_view)>;

// Reads and validates every variable. The error message is one line that names the variable and
// what is wrong with it; it never contains a secret.
common::Result<Config> LoadConfig(const GetEnv& getenv);

// "90s", "30m", "24h", "7d" or plain seconds; nullopt when malformed or not positive.
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);

// The process environment, for LoadConfig.
std::optional<std::string> ProcessEnv(std::string_view name);

// The start-up log line: every setting as NAME=value, secrets masked.
std::string DescribeConfig(const Config& config);

// The settings part of `xtrace-server --help`: every variable with its default and description.
std::string SettingsHelp();

// How the documentation and --help state a default: the value, "required", "unset", or the
// words of a computed default.
std::string_view DefaultText(const Default& when_unset);

}  // namespace xtrace::server
