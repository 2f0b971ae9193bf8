#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "support/server_process.hpp"
#include "wal/log.hpp"

namespace xtrace::wal {
namespace {

std::unique_ptr<Log> OpenAt(const std::string& dir) {
  Options options;
  options.dir = dir;
  auto log = Log::Open(options);
  EXPECT_TRUE(log.has_value()) << (log ? "" : log.error().message);
  return log ? std::move(*log) : nullptr;
}

uint64_t AppendAndWait(Log& log, std::string record) {
  std::promise<common::Result<uint64_t>> done;
  log.Append(std::move(record), [&](common::Result<uint64_t> r) { done.set_value(r); });
  auto r = done.get_future().get();
  EXPECT_TRUE(r.has_value());
  return r ? *r : 0;
}

TEST(WalKeys, BigEndianSortsNumerically) {
  EXPECT_EQ(SequenceKey(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_LT(SequenceKey(255), SequenceKey(256));
  EXPECT_EQ(SequenceFromKey(SequenceKey(0x0102030405060708ULL)), 0x0102030405060708ULL);
}

TEST(WalLog, ConcurrentAppendsGetGapFreeSequencesAndReadBackInOrder) {
  testing::TempDir dir;
  auto log = OpenAt(dir.path());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->LastSequence(), 0u);

  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::map<uint64_t, std::string> acked;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string payload = std::to_string(t) + ":" + std::to_string(i);
        const uint64_t seq = AppendAndWait(*log, payload);
        std::lock_guard lock(mu);
        acked[seq] = payload;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(acked.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(acked.begin()->first, 1u);
  EXPECT_EQ(acked.rbegin()->first, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(log->LastSequence(), uint64_t{kThreads * kPerThread});
  // Group commit: fewer fsyncs than records under concurrency.
  EXPECT_EQ(log->CommittedRecords(), uint64_t{kThreads * kPerThread});
  EXPECT_LE(log->CommitCount(), log->CommittedRecords());

  uint64_t cursor = 0;
  size_t seen = 0;
  for (;;) {
    auto batch = log->Read(cursor, 64, 1 << 20);
    ASSERT_TRUE(batch.has_value());
    if (batch->empty()) break;
    for (const auto& e : *batch) {
      ASSERT_EQ(e.seq, cursor + 1);
      EXPECT_EQ(e.bytes, acked[e.seq]);
      cursor = e.seq;
      ++seen;
    }
  }
  EXPECT_EQ(seen, acked.size());
}

TEST(WalLog, ReadHonoursByteBudgetButAlwaysReturnsOneRecord) {
  testing::TempDir dir;
  auto log = OpenAt(dir.path());
  for (int i = 0; i < 5; ++i) AppendAndWait(*log, std::string(100, 'x'));
  auto batch = log->Read(0, 100, 250);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->size(), 2u);
  batch = log->Read(0, 100, 1);
  EXPECT_EQ(batch->size(), 1u);
  batch = log->Read(3, 100, 1 << 20);
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ(batch->front().seq, 4u);
  EXPECT_TRUE(log->Read(5, 100, 1 << 20)->empty());
}

TEST(WalLog, RecordsAndIdentitySurviveReopen) {
  testing::TempDir dir;
  common::Uuid id;
  {
    auto log = OpenAt(dir.path());
    id = log->id();
    AppendAndWait(*log, "one");
    AppendAndWait(*log, "two");
  }
  auto log = OpenAt(dir.path());
  EXPECT_EQ(log->id(), id);
  EXPECT_EQ(log->LastSequence(), 2u);
  EXPECT_EQ(AppendAndWait(*log, "three"), 3u);
  auto all = log->Read(0, 10, 1 << 20);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[1].bytes, "two");
}

TEST(WalLog, AppendAfterCloseFailsInsteadOfAcknowledging) {
  testing::TempDir dir;
  auto log = OpenAt(dir.path());
  EXPECT_TRUE(log->AcceptingWrites());
  log->Close();
  EXPECT_FALSE(log->AcceptingWrites());
  std::optional<common::Result<uint64_t>> result;
  log->Append("late", [&](common::Result<uint64_t> r) { result = r; });
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
  EXPECT_EQ(result->error().code, common::ErrorCode::kUnavailable);
}

TEST(WalLog, OpenFailsCleanlyOnAnUnusableDirectory) {
  Options options;
  options.dir = "/proc/xtrace-cannot-create-here";
  auto log = Log::Open(options);
  ASSERT_FALSE(log.has_value());
  EXPECT_EQ(log.error().code, common::ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace xtrace::wal
