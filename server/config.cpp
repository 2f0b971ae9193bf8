#include "server/config.hpp"

#include <spdlog/fmt/fmt.h>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <thread>
#include <type_traits>

namespace xtrace::server {
namespace {

using common::Error;
using Reason = std::optional<std::string>;  // why a value is refused; nullopt: accepted

Error Invalid(std::string_view var, std::string_view why) {
  return Error{common::ErrorCode::kBadParameter, fmt::format("{}: {}", var, why), std::string(var)};
}

// The whole of `text` as a decimal number of type Int; nullopt on anything else (a sign, a
// space, a unit, a value out of Int's range).
template <class Int>
std::optional<Int> Decimal(std::string_view text) {
  Int n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

std::string Lowercase(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// The type of the Config member `Member` points to.
template <auto Member>
using MemberType = std::remove_cvref_t<decltype(std::declval<Config&>().*Member)>;

// Codecs: one per kind of value, bound to the Config member it fills.

// An integer from 1 to Max.
template <auto Member, uint64_t Max = std::numeric_limits<MemberType<Member>>::max()>
Reason ParseCount(std::string_view value, Config& c) {
  const auto n = Decimal<MemberType<Member>>(value);
  if (!n || *n == 0 || *n > Max) {
    return fmt::format("must be an integer from 1 to {}, got '{}'", Max, value);
  }
  c.*Member = *n;
  return std::nullopt;
}
template <auto Member>
std::string ShowNumber(const Config& c) {
  return std::to_string(c.*Member);
}
template <auto Member, uint64_t Max = std::numeric_limits<MemberType<Member>>::max()>
constexpr Codec kCount{&ParseCount<Member, Max>, &ShowNumber<Member>};

// Milliseconds, as an integer from 1 to 2^32-1.
template <auto Member>
Reason ParseMillis(std::string_view value, Config& c) {
  const auto n = Decimal<uint32_t>(value);
  if (!n || *n == 0) {
    return fmt::format("must be an integer from 1 to {}, got '{}'",
                       std::numeric_limits<uint32_t>::max(), value);
  }
  c.*Member = std::chrono::milliseconds(*n);
  return std::nullopt;
}
template <auto Member>
std::string ShowMillis(const Config& c) {
  return std::to_string((c.*Member).count());
}
template <auto Member>
constexpr Codec kMillis{&ParseMillis<Member>, &ShowMillis<Member>};

// A byte count from 0 up (0 turns the limit off).
template <auto Member>
Reason ParseBytesOrZero(std::string_view value, Config& c) {
  const auto n = Decimal<uint64_t>(value);
  if (!n) return fmt::format("must be a byte count, got '{}'", value);
  c.*Member = *n;
  return std::nullopt;
}
template <auto Member>
constexpr Codec kBytesOrZero{&ParseBytesOrZero<Member>, &ShowNumber<Member>};

// Any text.
template <auto Member>
Reason ParseText(std::string_view value, Config& c) {
  c.*Member = std::string(value);
  return std::nullopt;
}
template <auto Member>
std::string ShowText(const Config& c) {
  if constexpr (std::is_same_v<MemberType<Member>, std::string>) {
    return c.*Member;
  } else {
    return (c.*Member).value_or("(unset)");
  }
}
template <auto Member>
constexpr Codec kText{&ParseText<Member>, &ShowText<Member>};

// Text that, once the variable is set, must not be empty.
template <auto Member>
Reason ParseNonEmptyText(std::string_view value, Config& c) {
  if (value.empty()) return "must not be empty";
  c.*Member = std::string(value);
  return std::nullopt;
}
template <auto Member>
constexpr Codec kNonEmptyText{&ParseNonEmptyText<Member>, &ShowText<Member>, true};

// A secret: shown only by its length.
template <auto Member>
std::string ShowSecret(const Config& c) {
  const auto& secret = c.*Member;
  if constexpr (std::is_same_v<MemberType<Member>, std::string>) {
    return fmt::format("(set, {} chars)", secret.size());
  } else {
    return secret ? fmt::format("(set, {} chars)", secret->size()) : "(unset)";
  }
}
template <auto Member>
constexpr Codec kSecret{&ParseText<Member>, &ShowSecret<Member>};

// on/off, true/false, 1/0, in any case.
template <auto Member>
Reason ParseOnOff(std::string_view value, Config& c) {
  const std::string s = Lowercase(value);
  if (s == "1" || s == "true" || s == "on") {
    c.*Member = true;
  } else if (s == "0" || s == "false" || s == "off") {
    c.*Member = false;
  } else {
    return fmt::format("must be on/off, true/false or 1/0, got '{}'", value);
  }
  return std::nullopt;
}

// The settings whose parsing is their own.

Reason ParseDatabaseUrl(std::string_view value, Config& c) {
  if (!value.starts_with("postgres://") && !value.starts_with("postgresql://")) {
    return "must start with postgres:// or postgresql://";
  }
  c.database_url = std::string(value);
  return std::nullopt;
}
// The URL may carry a password: show only what follows the '@' (host, port, database).
std::string ShowDatabaseUrl(const Config& c) {
  std::string db = c.database_url;
  if (const auto at = db.rfind('@'); at != std::string::npos) {
    db = db.substr(0, db.find("://") + 3) + "***@" + db.substr(at + 1);
  }
  return db;
}
constexpr Codec kDatabaseUrl{&ParseDatabaseUrl, &ShowDatabaseUrl};

Reason ParseBindAddr(std::string_view value, Config& c) {
  const std::string bind(value);
  const auto colon = bind.rfind(':');
  if (colon == std::string::npos) return "must be host:port, got '" + bind + "'";
  std::string host = bind.substr(0, colon);
  const std::string port = bind.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return "host must be an IP address or localhost, got '" + bind + "'";
  const auto p = Decimal<unsigned>(port);
  if (!p || *p > 65535) return "port must be 0..65535, got '" + bind + "'";
  c.bind_host = host;
  c.bind_port = static_cast<uint16_t>(*p);
  return std::nullopt;
}
std::string ShowBindAddr(const Config& c) {
  if (c.bind_host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", c.bind_host, c.bind_port);  // IPv6
  }
  return fmt::format("{}:{}", c.bind_host, c.bind_port);
}
constexpr Codec kBindAddr{&ParseBindAddr, &ShowBindAddr};

// The one setting whose parser accepts neither on nor off.
Reason ParseCompat(std::string_view value, Config& c) {
  const std::string v = Lowercase(value);
  if (v == "1" || v == "true") {
    c.allow_unauthenticated_compat = true;
  } else if (v == "0" || v == "false") {
    c.allow_unauthenticated_compat = false;
  } else {
    return "must be 1, true, 0 or false";
  }
  return std::nullopt;
}
std::string ShowCompat(const Config& c) {
  return c.allow_unauthenticated_compat ? "true" : "false";
}
constexpr Codec kCompat{&ParseCompat, &ShowCompat};

Reason ParseRetention(std::string_view value, Config& c) {
  const auto d = ParseDuration(value);
  if (!d) {
    return fmt::format("must be a positive duration such as 3600s, 90m, 24h or 7d, got '{}'",
                       value);
  }
  c.wal_retention = *d;
  return std::nullopt;
}
std::string ShowRetention(const Config& c) {
  return fmt::format("{}s", c.wal_retention.count());
}
constexpr Codec kRetention{&ParseRetention, &ShowRetention};

std::string ShowWalSync(const Config& c) {
  return c.wal_sync ? "on" : "OFF (unsafe: benchmarks only)";
}
constexpr Codec kWalSync{&ParseOnOff<&Config::wal_sync>, &ShowWalSync};

Reason ParseLogLevel(std::string_view value, Config& c) {
  static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), value) == std::end(kLevels)) {
    return "must be one of trace, debug, info, warn, error, critical, off";
  }
  c.log_level = std::string(value);
  return std::nullopt;
}
constexpr Codec kLogLevel{&ParseLogLevel, &ShowText<&Config::log_level>};

// The hardware's threads, at least 2; at most 256, the most the setting accepts.
std::string HttpThreadsDefault() {
  return std::to_string(std::clamp(std::thread::hardware_concurrency(), 2u, 256u));
}

// Basic authentication needs both halves of the key pair (after the LANGFUSE_ fallbacks).
std::optional<Error> CheckKeyPair(const Config& c) {
  if (c.public_key.has_value() == c.secret_key.has_value()) return std::nullopt;
  return Invalid(c.public_key ? "XTRACE_SECRET_KEY" : "XTRACE_PUBLIC_KEY",
                 "Basic auth needs both XTRACE_PUBLIC_KEY and XTRACE_SECRET_KEY (or their "
                 "LANGFUSE_ fallbacks)");
}

constexpr Default Value(std::string_view text) {
  return {Default::Kind::kValue, text};
}
constexpr Default Required(std::string_view why) {
  return {Default::Kind::kRequired, why};
}
constexpr Default kUnset{Default::Kind::kUnset, "unset"};
constexpr Default kHttpThreadsDefault{Default::Kind::kComputed, "hardware threads, from 2 to 256",
                                      &HttpThreadsDefault};

constexpr uint64_t kGiB = uint64_t{1} << 30;

// Every setting, in the order they are read and validated (docs/operations.md lists them in the
// same order; tests/unit/config_test.cpp checks that it lists each with this default).
constexpr Setting kSettings[] = {
    {"DATABASE_URL", Required("is required (a PostgreSQL connection URL)"), kDatabaseUrl,
     "PostgreSQL URL (postgres:// or postgresql://) of the projector and the query pool"},
    {"API_BEARER_TOKEN", Required("is required and must not be empty"),
     kSecret<&Config::bearer_token>, "token for 'Authorization: Bearer'"},
    {"BIND_ADDR", Value("127.0.0.1:8742"), kBindAddr,
     "listen address host:port; port 0 picks a free port"},
    {"XTRACE_PORT_FILE", kUnset, kText<&Config::port_file>,
     "file the server writes its port to, atomically, once it listens"},
    {"DEFAULT_PROJECT_ID", Value("default"), kNonEmptyText<&Config::default_project_id>,
     "project of writes that name none, and the project reads are served from"},
    {"XTRACE_PUBLIC_KEY", kUnset, kText<&Config::public_key>, "Basic auth user",
     "LANGFUSE_PUBLIC_KEY"},
    {"XTRACE_SECRET_KEY", kUnset, kSecret<&Config::secret_key>, "Basic auth password",
     "LANGFUSE_SECRET_KEY", &CheckKeyPair},
    {"RATE_LIMIT_QPS", Value("20"), kCount<&Config::rate_limit_qps>,
     "query requests per second per credential"},
    {"RATE_LIMIT_BURST", Value("40"), kCount<&Config::rate_limit_burst>,
     "query requests a credential may make at once"},
    {"XTRACE_MAX_REQUEST_BODY_BYTES", Value("20971520"),
     kCount<&Config::max_request_body_bytes, uint64_t{4} * kGiB>, "largest request body"},
    {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", Value("false"), kCompat,
     "open GET /api/public/projects without credentials while no key pair is set"},
    {"XTRACE_WAL_DIR", Value("./data/wal"), kText<&Config::wal_dir>, "write-ahead log directory"},
    {"XTRACE_HTTP_THREADS", kHttpThreadsDefault, kCount<&Config::http_threads, 256>,
     "HTTP I/O threads"},
    {"XTRACE_QUERY_THREADS", Value("4"), kCount<&Config::query_threads, 256>,
     "query threads, and the most PostgreSQL connections of the query pool"},
    {"XTRACE_HTTP_READ_TIMEOUT_MS", Value("30000"), kMillis<&Config::read_timeout>,
     "time to read a request, write a response, or keep an idle connection"},
    {"XTRACE_QUERY_TIMEOUT_MS", Value("5000"), kMillis<&Config::statement_timeout>,
     "statement timeout of queries, and the longest wait for a pool connection"},
    {"XTRACE_SHUTDOWN_GRACE_MS", Value("10000"), kMillis<&Config::shutdown_grace>,
     "longest wait for requests in flight at shutdown"},
    {"XTRACE_WAL_MAX_BYTES", Value("4294967296"), kCount<&Config::wal_max_bytes>,
     "cap on the unprojected WAL backlog (503 WAL_FULL beyond it)"},
    {"XTRACE_WAL_MIN_FREE_BYTES", Value("268435456"), kBytesOrZero<&Config::wal_min_free_bytes>,
     "free space the WAL's disk must keep (0: no floor)"},
    {"XTRACE_WAL_RETENTION", Value("24h"), kRetention,
     "how long projected records stay in the WAL for replay (3600, 90m, 24h, 7d)"},
    {"XTRACE_WAL_SYNC", Value("on"), kWalSync,
     "fsync each group commit before acknowledging (off: benchmarks only)"},
    {"XTRACE_MAX_INFLIGHT_BYTES", Value("268435456"), kCount<&Config::max_inflight_bytes>,
     "request bytes admitted at once (503 beyond it)"},
    {"XTRACE_PROJECTOR_CHUNK_BYTES", Value("8388608"), kCount<&Config::projector_chunk_bytes, kGiB>,
     "WAL bytes a projector stream reads per transaction"},
    {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", Value("300000"),
     kMillis<&Config::projector_statement_timeout>,
     "statement timeout of the projector's connections and of migrations"},
    {"XTRACE_LOG_LEVEL", Value("info"), kLogLevel,
     "trace, debug, info, warn, error, critical or off"},
};

// The variable's value; unset and empty are the same unless the codec takes empty values.
std::optional<std::string> Read(const GetEnv& getenv, const Setting& s) {
  for (const std::string_view name : {s.name, s.fallback}) {
    if (name.empty()) continue;
    auto v = getenv(name);
    if (v && (!v->empty() || s.codec.empty_is_a_value)) return v;
  }
  return std::nullopt;
}

}  // namespace

std::span<const Setting> Settings() {
  return kSettings;
}

std::string_view DefaultText(const Default& when_unset) {
  switch (when_unset.kind) {
    case Default::Kind::kRequired: return "required";
    case Default::Kind::kUnset: return "unset";
    case Default::Kind::kValue:
    case Default::Kind::kComputed: break;
  }
  return when_unset.text;
}

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
  const auto n = Decimal<int64_t>(text);
  if (!n || *n <= 0 || *n > 3650 * 86400 / unit) return std::nullopt;
  return std::chrono::seconds(*n * unit);
}

std::optional<std::string> ProcessEnv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

common::Result<Config> LoadConfig(const GetEnv& getenv) {
  Config c;
  for (const Setting& s : kSettings) {
    std::optional<std::string> value = Read(getenv, s);
    if (!value) {
      switch (s.when_unset.kind) {
        case Default::Kind::kRequired: return Invalid(s.name, s.when_unset.text);
        case Default::Kind::kUnset: break;
        case Default::Kind::kValue: value = std::string(s.when_unset.text); break;
        case Default::Kind::kComputed: value = s.when_unset.compute(); break;
      }
    }
    if (value) {
      if (auto why = s.codec.parse(*value, c)) return Invalid(s.name, *why);
    }
    if (s.check != nullptr) {
      if (auto error = s.check(c)) return *error;
    }
  }
  return c;
}

std::string DescribeConfig(const Config& c) {
  std::string line;
  for (const Setting& s : kSettings) {
    if (!line.empty()) line += ' ';
    line += fmt::format("{}={}", s.name, s.codec.show(c));
  }
  return line;
}

std::string SettingsHelp() {
  std::string help =
      "Configuration comes from the environment (docs/operations.md has the validation rules):\n";
  for (const Setting& s : kSettings) {
    const bool required = s.when_unset.kind == Default::Kind::kRequired;
    help += fmt::format("  {} ({}{})\n      {}", s.name,
                        required ? "" : "default: ", DefaultText(s.when_unset), s.description);
    if (!s.fallback.empty()) help += fmt::format("; {} when unset", s.fallback);
    help += '\n';
  }
  return help;
}

}  // namespace xtrace::server
