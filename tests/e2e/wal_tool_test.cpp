// The xtrace-wal binary against real WAL directories.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <cstdio>
#include <future>
#include <sstream>

#include "schema/codec.hpp"
#include "support/command.hpp"
#include "support/server_process.hpp"
#include "wal/log.hpp"

namespace xtrace {
namespace {

using Run = testing::CommandResult;

Run Tool(const std::string& args) {
  return testing::RunCommand(std::string(XTRACE_WAL_BIN) + " " + args);
}

void Append(wal::Log& log, std::string bytes) {
  std::promise<void> done;
  log.Append(std::move(bytes), [&](common::Result<uint64_t> r) {
    EXPECT_TRUE(r.has_value());
    done.set_value();
  });
  done.get_future().get();
}

std::string TraceRecord(const char* name) {
  schema::WalRecord r;
  r.received_at = common::TimePoint(common::Micros(1767225600000000));
  r.project_id = "default";
  r.environment = "default";
  schema::TraceEvent t;
  t.id = "7d0c8a9e-1111-4222-8333-444455556666";
  t.name = name;
  t.metadata_json = R"({"k":1})";
  r.events = schema::EntityBatch{{t}};
  return schema::EncodeRecord(r);
}

TEST(WalTool, StatDumpAndVerifyAWalInUse) {
  testing::TempDir dir;
  wal::Options options;
  options.dir = dir.path();
  auto log = std::move(*wal::Log::Open(options));
  for (const char* name : {"a", "b", "c"}) Append(*log, TraceRecord(name));

  // The log stays open, as under a running server.
  auto stat = Tool("stat --wal-dir " + dir.path());
  EXPECT_EQ(stat.exit_code, 0) << stat.output;
  EXPECT_NE(stat.output.find("last sequence:   3"), std::string::npos) << stat.output;
  EXPECT_NE(stat.output.find(log->id().ToString()), std::string::npos) << stat.output;

  auto dump = Tool("dump --from 2 --to 3 --wal-dir " + dir.path());
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  std::istringstream lines(dump.output);
  std::string line;
  std::vector<boost::json::value> records;
  while (std::getline(lines, line)) records.push_back(boost::json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].at("seq").to_number<int>(), 2);
  EXPECT_EQ(records[0].at("events").at(0).at("trace").at("name"), "b");
  EXPECT_EQ(records[1].at("events").at(0).at("trace").at("metadata").at("k").to_number<int>(), 1);
  EXPECT_EQ(records[1].at("receivedAt"), "2026-01-01T00:00:00Z");

  auto verify = Tool("verify --wal-dir " + dir.path());
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("verified 3 records"), std::string::npos) << verify.output;

  Append(*log, std::string(24, '\x05'));  // not a Cap'n Proto message
  verify = Tool("verify --wal-dir " + dir.path());
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_NE(verify.output.find("record 4 does not decode"), std::string::npos) << verify.output;
}

TEST(WalTool, ClearErrorsForMissingWalAndBadUsage) {
  auto missing = Tool("stat --wal-dir /nonexistent/wal");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("no WAL in /nonexistent/wal"), std::string::npos) << missing.output;
  EXPECT_NE(Tool("").exit_code, 0);
  auto help = Tool("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("verify"), std::string::npos);
}

}  // namespace
}  // namespace xtrace
