#include <gtest/gtest.h>

#include <future>
#include <random>
#include <set>
#include <thread>

#include "support/server_process.hpp"
#include "support/wait.hpp"
#include "wal/log.hpp"

namespace xtrace::wal {
namespace {

std::unique_ptr<Log> OpenAt(const std::string& dir, Options options = {}) {
  options.dir = dir;
  auto log = Log::Open(options);
  EXPECT_TRUE(log.has_value()) << (log ? "" : log.error().message);
  return log ? std::move(*log) : nullptr;
}

common::Result<uint64_t> TryAppend(Log& log, std::string record) {
  std::promise<common::Result<uint64_t>> done;
  log.Append(std::move(record), [&](common::Result<uint64_t> r) { done.set_value(r); });
  return done.get_future().get();
}

uint64_t AppendAndWait(Log& log, std::string record) {
  auto r = TryAppend(log, std::move(record));
  EXPECT_TRUE(r.has_value());
  return r ? *r : 0;
}

// Returns once a trim pass has run from start to end after the call (false on timeout): whatever
// that pass would have removed is gone by then, so the absence of a trim can be asserted.
[[nodiscard]] bool WaitForAFullTrimPass(const Log& log) {
  const uint64_t done = log.GetStats().trim_passes;
  // Pass done + 1 may have begun before this call; pass done + 2 began after pass done + 1 ended.
  return testing::WaitUntil([&] { return log.GetStats().trim_passes >= done + 2; });
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
  EXPECT_EQ(log->GetStats().committed_records, uint64_t{kThreads * kPerThread});
  EXPECT_LE(log->GetStats().commits, log->GetStats().committed_records);

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
  EXPECT_EQ(result->error().code, common::ErrorCode::kWalUnavailable);
}

TEST(WalLog, BacklogCapRefusesWithWalFullUntilProjectionCatchesUp) {
  testing::TempDir dir;
  Options options;
  options.max_backlog_bytes = 64 * 1024;
  options.maintenance_interval = std::chrono::milliseconds(10);
  auto log = OpenAt(dir.path(), options);
  const std::string record(4096, 'r');
  uint64_t accepted = 0;
  common::Result<uint64_t> r = uint64_t{0};
  for (int i = 0; i < 100 && (r = TryAppend(*log, record)).has_value(); ++i) accepted = *r;
  ASSERT_FALSE(r.has_value()) << "the cap never refused";
  EXPECT_EQ(r.error().code, common::ErrorCode::kWalFull);
  // The cap's worth went in first, and no more: 16 records of 4 KiB fill 64 KiB exactly (RocksDB's
  // per-key overhead may make the estimate refuse one or two sooner, never later).
  EXPECT_GE(accepted, 13u);
  EXPECT_LE(accepted, 16u);
  EXPECT_EQ(log->LastSequence(), accepted);  // refused appends took no sequence

  log->SetProjected(accepted);  // the projector caught up: the backlog is gone
  ASSERT_TRUE(testing::WaitUntil([&] { return log->GetStats().backlog_bytes < 4096; }))
      << "backlog still " << log->GetStats().backlog_bytes << " bytes after projection";
  EXPECT_EQ(AppendAndWait(*log, record), accepted + 1);
}

TEST(WalLog, BacklogFoundAtOpenCountsAgainstTheCap) {
  // Records the log already held when it opened are sized by RocksDB, not counted as they
  // commit: a restart with a full backlog must still refuse appends until projection catches up.
  // RocksDB sizes them as stored (compressed), so the records are incompressible here.
  testing::TempDir dir;
  std::string record(4096, '\0');
  std::mt19937 random(7);
  for (char& c : record) c = static_cast<char>(random());
  {
    auto log = OpenAt(dir.path());
    for (int i = 0; i < 16; ++i) AppendAndWait(*log, record);
  }
  Options options;
  options.max_backlog_bytes = 64 * 1024;
  options.maintenance_interval = std::chrono::milliseconds(10);
  auto log = OpenAt(dir.path(), options);
  EXPECT_GE(log->GetStats().backlog_bytes, 15u * 4096);
  const auto refused = TryAppend(*log, record);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, common::ErrorCode::kWalFull);
  log->SetProjected(16);
  ASSERT_TRUE(testing::WaitUntil([&] { return log->GetStats().backlog_bytes == 0; }))
      << "backlog still " << log->GetStats().backlog_bytes << " bytes after projection";
  EXPECT_EQ(AppendAndWait(*log, record), 17u);
}

TEST(UnprojectedBytes, CountsExactlyAndErrsHighOnlyWhenGroupsAreMerged) {
  UnprojectedBytes u(/*max_groups=*/4);
  for (uint64_t seq = 1; seq <= 4; ++seq) u.Add(seq, 10);
  EXPECT_EQ(u.bytes(), 40u);
  u.Release(1);
  EXPECT_EQ(u.bytes(), 30u);  // exact while nothing is merged
  u.Add(5, 10);               // the fifth group: the four before are merged into two
  u.Add(6, 10);
  u.Add(7, 10);
  EXPECT_LE(u.groups(), 4u);  // bounded
  EXPECT_EQ(u.bytes(), 60u);  // merging never loses bytes
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    u.Release(seq);
    EXPECT_GE(u.bytes(), (7 - seq) * 10) << "understated after projecting " << seq;
  }
  EXPECT_EQ(u.bytes(), 0u);
  EXPECT_EQ(u.groups(), 0u);
}

TEST(WalLog, LowFreeDiskRefusesWithWalFull) {
  testing::TempDir dir;
  Options options;
  options.min_free_disk_bytes = UINT64_MAX;  // no disk has that much free
  auto log = OpenAt(dir.path(), options);
  auto r = TryAppend(*log, "x");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, common::ErrorCode::kWalFull);
  EXPECT_FALSE(log->AcceptingWrites());
  EXPECT_NE(log->GetStats().refusal.find("disk"), std::string::npos);
}

TEST(WalLog, TrimsOnlyProjectedRecordsOlderThanRetention) {
  testing::TempDir dir;
  Options options;
  options.maintenance_interval = std::chrono::milliseconds(2);  // a trim pass every 100 ms
  options.retention = std::chrono::seconds(-120);               // everything counts as old
  auto log = OpenAt(dir.path(), options);
  for (int i = 0; i < 10; ++i) AppendAndWait(*log, "x");
  ASSERT_TRUE(WaitForAFullTrimPass(*log)) << "the maintenance thread never checked for a trim";
  EXPECT_EQ(log->GetStats().first_seq, 1u) << "nothing is trimmed before it is projected";

  log->SetProjected(6);
  ASSERT_TRUE(testing::WaitUntil([&] { return log->GetStats().first_seq == 7; }))
      << "first retained sequence " << log->GetStats().first_seq << ", expected 7";
  EXPECT_EQ(log->GetStats().trimmed_records, 6u);
  auto rest = log->Read(0, 100, 1 << 20);
  ASSERT_TRUE(rest.has_value());
  ASSERT_EQ(rest->size(), 4u);
  EXPECT_EQ(rest->front().seq, 7u);
  log.reset();
  auto reopened = OpenAt(dir.path(), options);  // trimmed state and sequence survive reopen
  EXPECT_EQ(reopened->GetStats().first_seq, 7u);
  EXPECT_EQ(AppendAndWait(*reopened, "y"), 11u);
}

TEST(WalLog, RetentionKeepsRecentRecordsEvenWhenProjected) {
  testing::TempDir dir;
  Options options;
  options.maintenance_interval = std::chrono::milliseconds(2);  // a trim pass every 100 ms
  auto log = OpenAt(dir.path(), options);                       // default retention: 24 h
  for (int i = 0; i < 5; ++i) AppendAndWait(*log, "x");
  log->SetProjected(5);
  ASSERT_TRUE(WaitForAFullTrimPass(*log)) << "the maintenance thread never checked for a trim";
  EXPECT_EQ(log->GetStats().first_seq, 1u);
  EXPECT_EQ(log->Read(0, 100, 1 << 20)->size(), 5u);
}

TEST(WalLog, NeverReusesSequencesTheProjectorAlreadyConsumed) {
  testing::TempDir dir;
  auto log = OpenAt(dir.path());
  AppendAndWait(*log, "a");
  // As after a damaged disk: the projector's cursor (5) is ahead of the log (1).
  log->SetProjected(5);
  EXPECT_EQ(AppendAndWait(*log, "b"), 6u);
  EXPECT_EQ(log->LastSequence(), 6u);
  // Readers at different positions: new records continue after the one furthest ahead, even
  // though only the lesser position counts as projected.
  log->SetProjected(4, 9);
  EXPECT_EQ(AppendAndWait(*log, "c"), 10u);
  EXPECT_EQ(log->GetStats().projected_seq, 4u);
}

TEST(WalLog, OpenFailsCleanlyOnAnUnusableDirectory) {
  Options options;
  options.dir = "/proc/xtrace-cannot-create-here";
  auto log = Log::Open(options);
  ASSERT_FALSE(log.has_value());
  EXPECT_EQ(log.error().code, common::ErrorCode::kWalUnavailable);
}

}  // namespace
}  // namespace xtrace::wal
