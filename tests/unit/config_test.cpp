// Configuration: the settings table read from an environment, validated, described and
// documented. The documentation test reads docs/operations.md (XTRACE_OPERATIONS_MD, set by
// CMake) and fails when a setting is missing there or its documented default is not the one the
// server uses.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "server/config.hpp"

namespace xtrace::server {
namespace {

GetEnv EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::map<std::string, std::string> Required() {
  return {{"DATABASE_URL", "postgresql://u:pw@localhost/db"}, {"API_BEARER_TOKEN", "tok"}};
}

TEST(Config, DefaultsMatchTheReference) {
  auto c = LoadConfig(EnvOf(Required()));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bind_host, "127.0.0.1");
  EXPECT_EQ(c->bind_port, 8742);
  EXPECT_EQ(c->default_project_id, "default");
  EXPECT_EQ(c->rate_limit_qps, 20u);
  EXPECT_EQ(c->rate_limit_burst, 40u);
  EXPECT_EQ(c->max_request_body_bytes, 20u * 1024 * 1024);
  EXPECT_FALSE(c->allow_unauthenticated_compat);
  EXPECT_EQ(c->wal_dir, "./data/wal");
  EXPECT_FALSE(c->public_key.has_value());
  EXPECT_FALSE(c->secret_key.has_value());
  EXPECT_FALSE(c->port_file.has_value());
  EXPECT_GE(c->http_threads, 2u);
  EXPECT_LE(c->http_threads, 256u);
  EXPECT_EQ(c->query_threads, 4u);
  EXPECT_EQ(c->read_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c->statement_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->shutdown_grace, std::chrono::seconds(10));
  EXPECT_EQ(c->wal_max_bytes, uint64_t{4} << 30);
  EXPECT_EQ(c->wal_min_free_bytes, uint64_t{256} << 20);
  EXPECT_EQ(c->wal_retention, std::chrono::hours(24));
  EXPECT_TRUE(c->wal_sync);
  EXPECT_EQ(c->max_inflight_bytes, uint64_t{256} << 20);
  EXPECT_EQ(c->projector_chunk_bytes, uint64_t{8} << 20);
  EXPECT_EQ(c->projector_statement_timeout, std::chrono::minutes(5));
  EXPECT_EQ(c->log_level, "info");
}

TEST(Config, ReadsEveryVariable) {
  auto env = Required();
  env.insert({{"BIND_ADDR", "localhost:9000"},
              {"DEFAULT_PROJECT_ID", "p"},
              {"LANGFUSE_PUBLIC_KEY", "pk"},
              {"LANGFUSE_SECRET_KEY", "sk"},
              {"RATE_LIMIT_QPS", "5"},
              {"RATE_LIMIT_BURST", "6"},
              {"XTRACE_MAX_REQUEST_BODY_BYTES", "1000"},
              {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "TRUE"},
              {"XTRACE_WAL_DIR", "/tmp/w"},
              {"XTRACE_LOG_LEVEL", "debug"},
              {"XTRACE_WAL_MAX_BYTES", "1048576"},
              {"XTRACE_WAL_MIN_FREE_BYTES", "0"},
              {"XTRACE_WAL_RETENTION", "90m"},
              {"XTRACE_WAL_SYNC", "off"},
              {"XTRACE_MAX_INFLIGHT_BYTES", "4096"},
              {"XTRACE_PROJECTOR_CHUNK_BYTES", "1048576"},
              {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", "60000"},
              {"XTRACE_PORT_FILE", "/tmp/port"},
              {"XTRACE_HTTP_THREADS", "3"},
              {"XTRACE_QUERY_THREADS", "5"},
              {"XTRACE_HTTP_READ_TIMEOUT_MS", "1001"},
              {"XTRACE_QUERY_TIMEOUT_MS", "1002"},
              {"XTRACE_SHUTDOWN_GRACE_MS", "1003"}});
  auto c = LoadConfig(EnvOf(env));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bind_host, "127.0.0.1");
  EXPECT_EQ(c->bind_port, 9000);
  EXPECT_EQ(c->default_project_id, "p");
  EXPECT_EQ(c->public_key, "pk");
  EXPECT_EQ(c->secret_key, "sk");
  EXPECT_EQ(c->rate_limit_qps, 5u);
  EXPECT_EQ(c->rate_limit_burst, 6u);
  EXPECT_EQ(c->max_request_body_bytes, 1000u);
  EXPECT_TRUE(c->allow_unauthenticated_compat);
  EXPECT_EQ(c->wal_dir, "/tmp/w");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->wal_max_bytes, 1048576u);
  EXPECT_EQ(c->wal_min_free_bytes, 0u);
  EXPECT_EQ(c->wal_retention, std::chrono::minutes(90));
  EXPECT_FALSE(c->wal_sync);
  EXPECT_EQ(c->max_inflight_bytes, 4096u);
  EXPECT_EQ(c->projector_chunk_bytes, 1048576u);
  EXPECT_EQ(c->projector_statement_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c->port_file, "/tmp/port");
  EXPECT_EQ(c->http_threads, 3u);
  EXPECT_EQ(c->query_threads, 5u);
  EXPECT_EQ(c->read_timeout, std::chrono::milliseconds(1001));
  EXPECT_EQ(c->statement_timeout, std::chrono::milliseconds(1002));
  EXPECT_EQ(c->shutdown_grace, std::chrono::milliseconds(1003));

  env["XTRACE_PUBLIC_KEY"] = "xpk";  // XTRACE_ wins over LANGFUSE_
  env["XTRACE_SECRET_KEY"] = "xsk";
  env["BIND_ADDR"] = "[::1]:8080";
  c = LoadConfig(EnvOf(env));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->public_key, "xpk");
  EXPECT_EQ(c->bind_host, "::1");

  env["BIND_ADDR"] = "127.0.0.1:0";  // any free port: the server reports the one it got
  c = LoadConfig(EnvOf(env));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->bind_port, 0);
}

TEST(Config, BadValuesNameTheVariable) {
  const std::pair<std::string, std::string> cases[] = {
      {"DATABASE_URL", ""},
      {"DATABASE_URL", "mysql://x"},
      {"API_BEARER_TOKEN", ""},
      {"BIND_ADDR", "8742"},
      {"BIND_ADDR", "example.com:80"},
      {"BIND_ADDR", "127.0.0.1:99999"},
      {"DEFAULT_PROJECT_ID", ""},
      {"RATE_LIMIT_QPS", "0"},
      {"RATE_LIMIT_QPS", "abc"},
      {"RATE_LIMIT_BURST", "-1"},
      {"XTRACE_MAX_REQUEST_BODY_BYTES", "10MB"},
      {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "maybe"},
      {"XTRACE_LOG_LEVEL", "loud"},
      {"XTRACE_HTTP_THREADS", "0"},
      {"XTRACE_WAL_MAX_BYTES", "0"},
      {"XTRACE_WAL_MIN_FREE_BYTES", "lots"},
      {"XTRACE_WAL_RETENTION", "0h"},
      {"XTRACE_WAL_RETENTION", "1w"},
      {"XTRACE_WAL_SYNC", "sometimes"},
      {"XTRACE_MAX_INFLIGHT_BYTES", "-5"},
      {"XTRACE_PROJECTOR_CHUNK_BYTES", "0"},
      {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", "5s"},
      {"XTRACE_MAX_REQUEST_BODY_BYTES", "4294967297"},
      {"XTRACE_QUERY_THREADS", "257"},
      {"XTRACE_HTTP_READ_TIMEOUT_MS", "0"},
      {"XTRACE_QUERY_TIMEOUT_MS", "4294967296"},
      {"XTRACE_SHUTDOWN_GRACE_MS", " 5"},
      {"XTRACE_PROJECTOR_CHUNK_BYTES", "1073741825"},
  };
  for (const auto& [var, value] : cases) {
    auto env = Required();
    env[var] = value;
    auto c = LoadConfig(EnvOf(env));
    ASSERT_FALSE(c.has_value()) << var << "=" << value;
    EXPECT_EQ(c.error().message.rfind(var + ":", 0), 0u) << c.error().message;
    EXPECT_EQ(c.error().message.find('\n'), std::string::npos);
  }
  auto env = Required();
  env["XTRACE_PUBLIC_KEY"] = "pk";  // a key pair needs both halves
  EXPECT_FALSE(LoadConfig(EnvOf(env)).has_value());
}

TEST(Config, Durations) {
  EXPECT_EQ(ParseDuration("3600"), std::chrono::seconds(3600));
  EXPECT_EQ(ParseDuration("45s"), std::chrono::seconds(45));
  EXPECT_EQ(ParseDuration("24h"), std::chrono::hours(24));
  EXPECT_EQ(ParseDuration("7d"), std::chrono::hours(168));
  for (const char* bad : {"", "h", "0s", "-1h", "1.5h", "10x", "99999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(Config, DescriptionMasksSecrets) {
  auto env = Required();
  env["XTRACE_PUBLIC_KEY"] = "pk-public";
  env["XTRACE_SECRET_KEY"] = "sk-very-secret";
  env["API_BEARER_TOKEN"] = "bearer-very-secret";
  const auto text = DescribeConfig(*LoadConfig(EnvOf(env)));
  EXPECT_EQ(text.find("sk-very-secret"), std::string::npos);
  EXPECT_EQ(text.find("bearer-very-secret"), std::string::npos);
  EXPECT_EQ(text.find(":pw@"), std::string::npos);
  EXPECT_NE(text.find("localhost/db"), std::string::npos);
}

TEST(Config, NamesAreUnique) {
  std::set<std::string_view> names;
  for (const Setting& s : Settings()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    if (!s.fallback.empty()) {
      EXPECT_TRUE(names.insert(s.fallback).second) << s.fallback;
    }
  }
}

// Setting a variable to its stated default changes nothing: the default is a value the
// variable accepts, and it is the value used when the variable is unset.
TEST(Config, EveryDefaultIsTheValueUsedWhenUnset) {
  const auto unset = LoadConfig(EnvOf(Required()));
  ASSERT_TRUE(unset.has_value()) << unset.error().message;
  for (const Setting& s : Settings()) {
    if (s.when_unset.kind != Default::Kind::kValue) continue;
    auto env = Required();
    env[std::string(s.name)] = std::string(s.when_unset.text);
    const auto set = LoadConfig(EnvOf(env));
    ASSERT_TRUE(set.has_value()) << s.name << ": " << set.error().message;
    EXPECT_EQ(DescribeConfig(*set), DescribeConfig(*unset)) << s.name;
  }
}

TEST(Config, RequiredSettingsAreRequired) {
  for (const Setting& s : Settings()) {
    if (s.when_unset.kind != Default::Kind::kRequired) continue;
    auto env = Required();
    env.erase(std::string(s.name));
    const auto c = LoadConfig(EnvOf(env));
    ASSERT_FALSE(c.has_value()) << s.name;
    EXPECT_EQ(c.error().message.rfind(std::string(s.name) + ": is required", 0), 0u)
        << c.error().message;
  }
}

// The line of `help` that starts with `name`, or "" when there is none.
std::string HelpLine(const std::string& help, std::string_view name) {
  const auto at = help.find("\n  " + std::string(name) + " (");
  if (at == std::string::npos) return {};
  return help.substr(at + 1, help.find('\n', at + 1) - at - 1);
}

TEST(Config, DescriptionAndHelpNameEverySettingInOrder) {
  const std::string line = " " + DescribeConfig(*LoadConfig(EnvOf(Required())));
  const std::string help = SettingsHelp();
  size_t in_line = 0, in_help = 0;
  for (const Setting& s : Settings()) {
    const std::string name(s.name);
    in_line = line.find(" " + name + "=", in_line);
    EXPECT_NE(in_line, std::string::npos) << name << " not in the start-up line, or out of order";
    in_help = help.find("\n  " + name + " (", in_help);
    EXPECT_NE(in_help, std::string::npos) << name << " not in --help, or out of order";
    if (in_line == std::string::npos || in_help == std::string::npos) return;
    // The default on the variable's line, the description on the next.
    const std::string first = HelpLine(help, name);
    EXPECT_NE(first.find(std::string(DefaultText(s.when_unset)) + ")"), std::string::npos) << first;
    EXPECT_NE(help.find(first + "\n      " + std::string(s.description)), std::string::npos)
        << name;
  }
  EXPECT_NE(HelpLine(help, "DATABASE_URL").find("(required)"), std::string::npos) << help;
  EXPECT_NE(HelpLine(help, "RATE_LIMIT_QPS").find("(default: 20)"), std::string::npos) << help;
}

// One row of the configuration table of docs/operations.md: the variable and its default cell.
struct DocumentedSetting {
  std::string name;
  std::string default_cell;
};

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(' ') - first + 1));
}

// The rows of the table under "## Configuration" whose header starts "| variable | default |",
// in document order.
std::vector<DocumentedSetting> DocumentedSettings() {
  std::ifstream in(XTRACE_OPERATIONS_MD);
  EXPECT_TRUE(in.good()) << "cannot read " << XTRACE_OPERATIONS_MD;
  std::vector<DocumentedSetting> rows;
  bool in_section = false, in_table = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) in_section = line == "## Configuration";
    if (!in_section) continue;
    if (line.starts_with("| variable | default |")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (!line.starts_with("|")) break;  // the table ended
    if (line.starts_with("|---")) continue;
    // | `NAME` | default | validation | meaning |
    const size_t second = line.find('|', 1);
    const size_t third = line.find('|', second + 1);
    if (second == std::string::npos || third == std::string::npos) continue;
    std::string name = Trim(std::string_view(line).substr(1, second - 1));
    if (name.size() >= 2 && name.front() == '`' && name.back() == '`') {
      name = name.substr(1, name.size() - 2);
    }
    rows.push_back({name, Trim(std::string_view(line).substr(second + 1, third - second - 1))});
  }
  return rows;
}

// The first `code span` of a table cell, or "" when it has none.
std::string FirstCodeSpan(const std::string& cell) {
  const auto open = cell.find('`');
  if (open == std::string::npos) return {};
  const auto close = cell.find('`', open + 1);
  if (close == std::string::npos) return {};
  return cell.substr(open + 1, close - open - 1);
}

TEST(Config, OperationsGuideListsEverySettingWithItsDefault) {
  const auto documented = DocumentedSettings();
  ASSERT_FALSE(documented.empty()) << "no configuration table in " << XTRACE_OPERATIONS_MD;
  std::map<std::string, std::string> default_of;
  std::vector<std::string> order;
  for (const auto& row : documented) {
    default_of[row.name] = row.default_cell;
    order.push_back(row.name);
  }
  std::vector<std::string> expected_order;
  for (const Setting& s : Settings()) {
    const std::string name(s.name);
    expected_order.push_back(name);
    const auto it = default_of.find(name);
    if (it == default_of.end()) {
      ADD_FAILURE() << "docs/operations.md does not list " << name;
      continue;
    }
    const std::string& cell = it->second;
    switch (s.when_unset.kind) {
      case Default::Kind::kValue:
        EXPECT_EQ(FirstCodeSpan(cell), s.when_unset.text)
            << name << ": documented default '" << cell << "', the server's is '"
            << s.when_unset.text << "'";
        break;
      case Default::Kind::kRequired:
        EXPECT_NE(cell.find("required"), std::string::npos) << name << ": " << cell;
        break;
      case Default::Kind::kUnset: EXPECT_EQ(cell, "unset") << name; break;
      case Default::Kind::kComputed: EXPECT_EQ(cell, s.when_unset.text) << name; break;
    }
  }
  // Validation follows the table's order, and the guide says so: it lists them in that order,
  // and nothing the server does not read.
  EXPECT_EQ(order, expected_order);
}

}  // namespace
}  // namespace xtrace::server
