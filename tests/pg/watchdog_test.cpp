// Connections opened by pg::Connect on a real PostgreSQL: the role's session is in place, and
// the watchdog ends a call the server never answers.
#include <gtest/gtest.h>

#include <pqxx/except>
#include <pqxx/nontransaction>

#include <chrono>
#include <thread>

#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "support/pg.hpp"
#include "support/tcp_proxy.hpp"

namespace xtrace {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Show(pqxx::connection& conn, const std::string& name) {
  return pqxx::nontransaction(conn).exec1("SHOW " + name)[0].as<std::string>();
}

uint16_t PortOf(const std::string& url) {
  const auto colon = url.rfind(':');
  return static_cast<uint16_t>(std::stoi(url.substr(colon + 1, url.find('/', colon) - colon - 1)));
}

TEST(PgSession, RoleSettingsAreInPlace) {
  testing::TestDatabase db;
  auto conn = pg::Connect(db.url(), pg::SessionFor(pg::Role::kQuery, milliseconds(1234)));
  EXPECT_EQ(Show(*conn, "statement_timeout"), "1234ms");
  EXPECT_EQ(Show(*conn, "lock_timeout"), "1s");
  EXPECT_EQ(Show(*conn, "idle_in_transaction_session_timeout"), "1min");
  EXPECT_EQ(Show(*conn, "default_transaction_read_only"), "on");
  EXPECT_EQ(Show(*conn, "TimeZone"), "UTC");

  auto projector = pg::Connect(db.url(), pg::SessionFor(pg::Role::kProjector));
  EXPECT_EQ(Show(*projector, "statement_timeout"), "5min");
  EXPECT_EQ(Show(*projector, "default_transaction_read_only"), "off");
}

TEST(PgSession, TimeoutsTheOperatorSetInOptionsAreKept) {
  testing::TestDatabase db;
  auto conn = pg::Connect(db.url() + "?options=-c%20statement_timeout%3D777",
                          pg::SessionFor(pg::Role::kQuery));
  EXPECT_EQ(Show(*conn, "statement_timeout"), "777ms");
  EXPECT_EQ(Show(*conn, "lock_timeout"), "1s");
}

TEST(PgWatchdog, SilentServerBreaksTheCallAtItsDeadline) {
  testing::TestDatabase db;
  testing::TcpProxy proxy(PortOf(db.url()), testing::TcpProxy::Mode::kForward);
  const std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(proxy.port()) +
                          db.url().substr(db.url().rfind('/'));
  auto conn = pg::Connect(url, pg::SessionFor(pg::Role::kQuery));
  EXPECT_EQ(Show(*conn, "TimeZone"), "UTC");
  proxy.SetMode(testing::TcpProxy::Mode::kBlackHole);
  const auto t0 = Clock::now();
  pg::CallGuard guard(*conn, milliseconds(300));
  EXPECT_THROW(Show(*conn, "TimeZone"), pqxx::broken_connection);
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(guard.fired());
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));
}

TEST(PgWatchdog, ASlowButAnsweringServerIsLeftAlone) {
  testing::TestDatabase db;
  auto conn = pg::Connect(db.url(), pg::SessionFor(pg::Role::kTool));
  pg::CallGuard guard(*conn, milliseconds(400));
  // Several statements, each well within the deadline, together well beyond it.
  for (int i = 0; i < 5; ++i) pqxx::nontransaction(*conn).exec("SELECT pg_sleep(0.2)");
  EXPECT_FALSE(guard.fired());
}

TEST(PgWatchdog, InterruptEndsACallInFlight) {
  testing::TestDatabase db;
  pg::Interrupter interrupter;
  auto conn = pg::Connect(db.url(), pg::SessionFor(pg::Role::kTool), &interrupter);
  pg::CallGuard guard(*conn, milliseconds(60000), &interrupter);
  const auto t0 = Clock::now();
  interrupter.InterruptAt(t0 + milliseconds(300));
  EXPECT_THROW(pqxx::nontransaction(*conn).exec("SELECT pg_sleep(30)"), pqxx::broken_connection);
  EXPECT_LT(Clock::now() - t0, milliseconds(5000));
  EXPECT_TRUE(guard.fired());
  // Interrupted: a new connection is refused at once.
  EXPECT_THROW(pg::Connect(db.url(), pg::SessionFor(pg::Role::kTool), &interrupter),
               pqxx::broken_connection);
}

}  // namespace
}  // namespace xtrace
