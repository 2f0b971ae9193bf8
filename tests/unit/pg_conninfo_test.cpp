// Network defaults merged into the operator's DATABASE_URL, and the per-role sessions.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

#include "pg/conninfo.hpp"
#include "pg/session.hpp"

namespace xtrace::pg {
namespace {

using std::chrono::milliseconds;

TEST(PgConninfo, UrlGetsEveryDefaultAsQueryParameters) {
  const auto merged = WithDefaults("postgresql://u:p@db.example:5433/xtrace", NetworkDefaults());
  EXPECT_EQ(merged,
            "postgresql://u:p@db.example:5433/xtrace?connect_timeout=5&keepalives=1&"
            "keepalives_idle=10&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=30000");
  EXPECT_EQ(ValueOf(merged, "host"), "db.example");
  EXPECT_EQ(ValueOf(merged, "tcp_user_timeout"), "30000");
}

TEST(PgConninfo, WhatTheOperatorSetIsKept) {
  const auto merged =
      WithDefaults("postgres://db/xtrace?sslmode=require&connect_timeout=20&keepalives_idle=60",
                   NetworkDefaults());
  EXPECT_EQ(ValueOf(merged, "connect_timeout"), "20");
  EXPECT_EQ(ValueOf(merged, "keepalives_idle"), "60");
  EXPECT_EQ(ValueOf(merged, "sslmode"), "require");
  EXPECT_EQ(ValueOf(merged, "keepalives_count"), "3");
  EXPECT_EQ(merged.find("connect_timeout=5"), std::string::npos);
}

TEST(PgConninfo, KeyValueFormGetsDefaultsToo) {
  const auto merged =
      WithDefaults("host=127.0.0.1 dbname=xtrace keepalives_count=9", NetworkDefaults());
  EXPECT_EQ(ValueOf(merged, "dbname"), "xtrace");
  EXPECT_EQ(ValueOf(merged, "keepalives_count"), "9");
  EXPECT_EQ(ValueOf(merged, "connect_timeout"), "5");
  EXPECT_EQ(ValueOf(merged, "tcp_user_timeout"), "30000");
}

TEST(PgConninfo, PgConnectTimeoutFromTheEnvironmentWins) {
  ASSERT_EQ(setenv("PGCONNECT_TIMEOUT", "17", 1), 0);
  const auto merged = WithDefaults("postgresql://db/xtrace", NetworkDefaults());
  const auto timeout = ConnectTimeout("postgresql://db/xtrace");
  unsetenv("PGCONNECT_TIMEOUT");
  EXPECT_EQ(ValueOf(merged, "connect_timeout"), "");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(*timeout, std::chrono::seconds(17));
}

TEST(PgConninfo, ConnectTimeoutFollowsLibpqRules) {
  EXPECT_EQ(ConnectTimeout("postgresql://db/x"), std::chrono::seconds(5));
  EXPECT_EQ(ConnectTimeout("postgresql://db/x?connect_timeout=1"), std::chrono::seconds(2));
  EXPECT_EQ(ConnectTimeout("postgresql://db/x?connect_timeout=0"), std::nullopt);
}

TEST(PgConninfo, UnparsableUrlIsAClearError) {
  try {
    WithDefaults("postgresql://db/x?no_such_parameter=1", NetworkDefaults());
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_parameter"), std::string::npos) << e.what();
  }
}

TEST(PgSession, EveryRoleHasTimeouts) {
  for (const Role role : {Role::kProjector, Role::kQuery, Role::kTool}) {
    const Session s = SessionFor(role);
    EXPECT_GT(s.statement_timeout.count(), 0) << RoleName(role);
    EXPECT_GT(s.idle_in_transaction_timeout.count(), 0) << RoleName(role);
    EXPECT_LE(s.lock_timeout, s.statement_timeout) << RoleName(role);
    EXPECT_GT(s.call_deadline(), s.statement_timeout) << RoleName(role);
  }
  EXPECT_TRUE(SessionFor(Role::kQuery).read_only);
  EXPECT_FALSE(SessionFor(Role::kProjector).read_only);
  // The projector's chunks can take seconds: its timeout is far above the query's.
  EXPECT_GE(SessionFor(Role::kProjector).statement_timeout, milliseconds(60000));
}

TEST(PgSession, ConfiguredStatementTimeoutReplacesTheDefault) {
  const Session q = SessionFor(Role::kQuery, milliseconds(500));
  EXPECT_EQ(q.statement_timeout, milliseconds(500));
  EXPECT_EQ(q.lock_timeout, milliseconds(500));  // never above the statement timeout
  EXPECT_EQ(q.call_deadline(), milliseconds(2500));
}

}  // namespace
}  // namespace xtrace::pg
