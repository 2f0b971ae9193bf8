// The projection loop (projector/stream.hpp) above its I/O: an in-memory source instead of the
// WAL, and a sink that keeps what it was asked to write instead of PostgreSQL. What is decided
// here (which records a stream folds, how far its cursor moves, when it halts, what it
// quarantines) is the same code the server and xtrace-replay run.
#include <gtest/gtest.h>

#include <pqxx/except>

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "projector/cursor.hpp"
#include "projector/projector.hpp"
#include "projector/sink.hpp"
#include "projector/source.hpp"
#include "projector/stream.hpp"
#include "schema/codec.hpp"
#include "support/wait.hpp"

namespace xtrace::projector {
namespace {

using testing::WaitUntil;

const common::Uuid kLogId = *common::Uuid::Parse("5f0c8a9e-1111-4222-8333-444455556666");

std::string TraceRecord(int n) {
  schema::WalRecord record;
  record.project_id = "p";
  record.environment = "default";
  schema::TraceEvent trace;
  char id[40];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
  trace.id = id;
  trace.name = "t" + std::to_string(n);
  record.events = schema::EntityBatch{{trace}};
  return schema::EncodeRecord(record);
}

std::string MetricRecord(int n) {
  schema::WalRecord record;
  record.project_id = "p";
  record.environment = "default";
  schema::MetricPoint point;
  point.name = "m";
  point.value = n;
  point.timestamp = common::TimePoint(common::Micros(int64_t{n} * 1000000));
  record.source = schema::Source::kMetricsBatch;
  record.events = schema::MetricBatch{{point, point}};
  return schema::EncodeRecord(record);
}

// Bytes no build can decode, as a damaged or foreign record would be.
const std::string kGarbage(64, '\x01');

// The in-memory log, whose reads can be made to fail as a damaged disk would.
class FakeSource final : public MemorySource {
 public:
  FakeSource() : MemorySource(kLogId) {}
  common::Result<std::vector<wal::Entry>> Read(uint64_t after, size_t max_records,
                                               size_t max_bytes) const override {
    {
      std::lock_guard lock(mu_);
      if (failure_) return common::Error{common::ErrorCode::kWalUnavailable, *failure_, {}};
    }
    return MemorySource::Read(after, max_records, max_bytes);
  }
  void FailReads(std::optional<std::string> message) {
    std::lock_guard lock(mu_);
    failure_ = std::move(message);
  }

 private:
  mutable std::mutex mu_;
  std::optional<std::string> failure_;
};

// A database of one stream, as far as the loop can tell: the records folded, the stored cursor
// (fenced as TableCursor fences it), the quarantine. A transaction either happens whole or throws
// before changing anything. Records in `refuse` are refused as PostgreSQL refuses bad rows
// (SQLSTATE 22P02); `fail` makes every transaction fail as a lost connection does.
class FakeSink final : public Sink {
 public:
  Opened Open() override {
    std::lock_guard lock(mu_);
    open_ = true;
    return {stored_, quarantine_.size()};
  }
  bool IsOpen() const override {
    std::lock_guard lock(mu_);
    return open_;
  }
  void Close() override {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void Fold(Chunk& chunk, uint64_t from) override {
    std::lock_guard lock(mu_);
    Check(from);
    for (const auto& e : chunk.records) {
      if (refuse_.contains(e.seq)) {
        throw pqxx::sql_error("invalid input syntax for type json", "INSERT", "22P02");
      }
    }
    for (const auto& e : chunk.records) folded_.push_back(e.seq);
    ++transactions_;
    stored_ = chunk.to;
  }
  void Quarantine(const wal::Entry& entry, const std::exception& error, uint64_t from) override {
    std::lock_guard lock(mu_);
    Check(from);
    quarantine_[entry.seq] = error.what();
    ++transactions_;
    stored_ = entry.seq;
  }
  void AbandonAt(pg::Clock::time_point) override {}

  void Refuse(uint64_t seq) { refuse_.insert(seq); }
  void FailEverything(bool fail) { fail_ = fail; }
  void MoveStoredCursor(uint64_t seq) {  // as another projector on the same log would
    std::lock_guard lock(mu_);
    stored_ = seq;
  }
  std::vector<uint64_t> folded() const {
    std::lock_guard lock(mu_);
    return folded_;
  }
  std::map<uint64_t, std::string> quarantine() const {
    std::lock_guard lock(mu_);
    return quarantine_;
  }
  uint64_t stored() const {
    std::lock_guard lock(mu_);
    return stored_;
  }
  int transactions() const {
    std::lock_guard lock(mu_);
    return transactions_;
  }

 private:
  void Check(uint64_t from) const {
    if (fail_) throw pqxx::broken_connection("server closed the connection unexpectedly");
    if (stored_ != from) throw CursorFenced();
  }

  mutable std::mutex mu_;
  bool open_ = false;
  bool fail_ = false;
  std::set<uint64_t> refuse_;
  std::vector<uint64_t> folded_;
  std::map<uint64_t, std::string> quarantine_;
  uint64_t stored_ = 0;
  int transactions_ = 0;
};

// The next Step halts at record `seq`, for `cause`, saying `why`.
void ExpectHalt(StreamLoop& loop, uint64_t seq, Halted::Cause cause, const std::string& why) {
  try {
    loop.Step();
    ADD_FAILURE() << "the stream went on; expected it to halt at record " << seq;
  } catch (const Halted& e) {
    EXPECT_EQ(e.seq(), seq);
    EXPECT_EQ(e.cause(), cause);
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST(ProjectionLoop, EachStreamFoldsItsKindAndItsCursorMovesOverTheOthers) {
  FakeSource source;
  for (const auto& bytes :
       {TraceRecord(1), MetricRecord(2), MetricRecord(3), TraceRecord(4), MetricRecord(5)}) {
    source.Append(bytes);
  }
  FakeSink traces_sink, metrics_sink;
  // However slow the machine, a move over the other kind's records stays in memory.
  StreamLoop traces(source, Stream::kTraces, traces_sink,
                    {.cursor_lag_interval = std::chrono::hours(1)});
  StreamLoop metrics(source, Stream::kMetrics, metrics_sink, {});
  traces.Open();
  metrics.Open();
  ASSERT_TRUE(traces.Step());
  ASSERT_TRUE(metrics.Step());
  EXPECT_EQ(traces_sink.folded(), (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(metrics_sink.folded(), (std::vector<uint64_t>{2, 3, 5}));
  // Both stored cursors moved with the rows, past the other kind's records too.
  EXPECT_EQ(traces_sink.stored(), 5u);
  EXPECT_EQ(metrics_sink.stored(), 5u);
  EXPECT_EQ(traces.counts().records, 2u);
  EXPECT_EQ(traces.counts().events, 2u);
  EXPECT_EQ(metrics.counts().events, 6u);
  EXPECT_FALSE(traces.Step()) << "nothing new";

  // A chunk of only the other kind moves the cursor in memory, without a transaction; the
  // stored cursor catches up when the stream stores it (the server does when the log is idle).
  source.Append(MetricRecord(6));
  source.Append(MetricRecord(7));
  const int transactions = traces_sink.transactions();
  ASSERT_TRUE(traces.Step());
  EXPECT_EQ(traces.position(), 7u);
  EXPECT_EQ(traces_sink.transactions(), transactions);
  EXPECT_EQ(traces_sink.stored(), 5u);
  traces.StoreCursor();
  EXPECT_EQ(traces_sink.stored(), 7u);
  EXPECT_EQ(traces_sink.folded(), (std::vector<uint64_t>{1, 4}));
}

TEST(ProjectionLoop, AnUndecodableRecordHaltsTheStreamRightBeforeIt) {
  FakeSource source;
  source.Append(TraceRecord(1));
  source.Append(kGarbage);
  source.Append(TraceRecord(3));
  FakeSink sink;
  StreamLoop loop(source, Stream::kTraces, sink, {});
  loop.Open();
  for (int attempt = 0; attempt < 2; ++attempt) {  // retrying halts again: nothing is skipped
    ExpectHalt(loop, 2, Halted::Cause::kUndecodable, "cannot be decoded");
    loop.DropPrefetch();
  }
  // The record before it, in the same chunk, is folded: where a stream halts does not depend on
  // how the log was cut into chunks.
  EXPECT_EQ(loop.position(), 1u);
  EXPECT_EQ(sink.stored(), 1u);
  EXPECT_EQ(sink.folded(), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(sink.quarantine().empty()) << "not PostgreSQL's refusal: nothing to quarantine";

  // The other stream cannot read the record's kind either: it moves over record 1 and halts at
  // record 2 too.
  FakeSink metrics_sink;
  StreamLoop metrics(source, Stream::kMetrics, metrics_sink, {});
  metrics.Open();
  EXPECT_THROW(metrics.Step(), Halted);
  EXPECT_EQ(metrics.position(), 1u);
}

// A record this build decodes but cannot fold (a score, which a newer build may write) halts the
// stream as an undecodable one does: skipping it would lose acknowledged events.
TEST(ProjectionLoop, ARecordWithEventsThisBuildCannotFoldHaltsTheStream) {
  schema::WalRecord scored;
  scored.project_id = "p";
  schema::ScoreEvent score;
  score.id = "s-1";
  score.trace_id = "00000000-0000-4000-8000-000000000001";
  scored.events = schema::EntityBatch{{score}};
  FakeSource source;
  source.Append(TraceRecord(1));
  source.Append(schema::EncodeRecord(scored));
  FakeSink sink;
  StreamLoop loop(source, Stream::kTraces, sink, {});
  loop.Open();
  ExpectHalt(loop, 2, Halted::Cause::kUndecodable, "score and deletion events");
  EXPECT_EQ(sink.folded(), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(sink.quarantine().empty());
}

TEST(ProjectionLoop, AReadErrorHaltsTheStreamAtTheNextRecord) {
  FakeSource source;
  source.Append(TraceRecord(1));
  source.FailReads("IO error: block checksum mismatch");
  FakeSink sink;
  StreamLoop loop(source, Stream::kTraces, sink, {});
  loop.Open();
  ExpectHalt(loop, 1, Halted::Cause::kUnreadable, "the WAL cannot be read: IO error");
  EXPECT_EQ(loop.position(), 0u);
  source.FailReads(std::nullopt);
  ASSERT_TRUE(loop.Step());
  EXPECT_EQ(sink.folded(), (std::vector<uint64_t>{1}));
}

TEST(ProjectionLoop, ARefusedRecordIsQuarantinedAloneAndItsNeighboursFolded) {
  FakeSource source;
  for (int i = 1; i <= 20; ++i) source.Append(i % 5 == 0 ? MetricRecord(i) : TraceRecord(i));
  FakeSink sink;
  sink.Refuse(7);
  sink.Refuse(19);  // the last trace record: the metric record after it is still moved over
  StreamLoop loop(source, Stream::kTraces, sink, {});
  loop.Open();
  ASSERT_TRUE(loop.Step());
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 20; ++i) {
    if (i % 5 != 0 && i != 7 && i != 19) expected.push_back(i);
  }
  EXPECT_EQ(sink.folded(), expected);
  const auto quarantine = sink.quarantine();
  ASSERT_EQ(quarantine.size(), 2u);
  EXPECT_NE(quarantine.at(7).find("invalid input syntax"), std::string::npos);
  EXPECT_TRUE(quarantine.contains(19));
  EXPECT_EQ(loop.position(), 20u);
  loop.StoreCursor();  // the metric record after 19 may have been moved over in memory
  EXPECT_EQ(sink.stored(), 20u);
  EXPECT_EQ(loop.counts().records, expected.size());
  EXPECT_EQ(loop.counts().quarantined, 2u);
  EXPECT_EQ(loop.quarantined(), 2u);
  // Bisection: a few transactions per refused record, not one per record.
  EXPECT_LT(sink.transactions(), 16);
}

// Two trace records, and the traces stream opened on them.
class TwoRecordsTest : public ::testing::Test {
 protected:
  TwoRecordsTest() {
    source.Append(TraceRecord(1));
    source.Append(TraceRecord(2));
    loop.Open();
  }
  FakeSource source;
  FakeSink sink;
  StreamLoop loop{source, Stream::kTraces, sink, {}};
};

TEST_F(TwoRecordsTest, AFailureThatIsNotTheRowsFaultQuarantinesNothing) {
  sink.FailEverything(true);
  EXPECT_THROW(loop.Step(), pqxx::broken_connection);
  loop.Close();
  EXPECT_TRUE(sink.quarantine().empty());
  EXPECT_EQ(loop.position(), 0u);
  // Reconnected, the same chunk is applied whole.
  sink.FailEverything(false);
  loop.Open();
  ASSERT_TRUE(loop.Step());
  EXPECT_EQ(sink.folded(), (std::vector<uint64_t>{1, 2}));
}

TEST_F(TwoRecordsTest, ACursorMovedByAnotherProjectorFencesTheStream) {
  sink.MoveStoredCursor(1);
  EXPECT_THROW(loop.Step(), CursorFenced);
  EXPECT_TRUE(sink.folded().empty());
  // Reopened, the stream goes on from the stored cursor.
  loop.Close();
  loop.Open();
  EXPECT_EQ(loop.position(), 1u);
  ASSERT_TRUE(loop.Step());
  EXPECT_EQ(sink.folded(), (std::vector<uint64_t>{2}));
}

// The server's stream (thread, backoff, status) over the same fakes.
class StreamProjectorTest : public ::testing::Test {
 protected:
  StreamProjectorTest() {
    auto sink = std::make_unique<FakeSink>();
    sink_ = sink.get();
    Options options;
    options.min_backoff = std::chrono::milliseconds(1);
    options.max_backoff = std::chrono::milliseconds(10);
    stream_ = std::make_unique<StreamProjector>(source_, Stream::kTraces, std::move(sink), options);
  }
  ~StreamProjectorTest() override { stream_->Stop(); }

  FakeSource source_;
  FakeSink* sink_ = nullptr;
  std::unique_ptr<StreamProjector> stream_;
};

TEST_F(StreamProjectorTest, AWalReadErrorHaltsTheStreamWithTheReasonInItsStatus) {
  source_.Append(TraceRecord(1));
  source_.FailReads("IO error: block checksum mismatch");
  stream_->Start();
  ASSERT_TRUE(WaitUntil([&] { return !stream_->halted().empty(); })) << "the stream never halted";
  const std::string halted = stream_->halted();
  EXPECT_NE(halted.find("WAL record 1"), std::string::npos) << halted;
  EXPECT_NE(halted.find("cannot be read"), std::string::npos) << halted;
  EXPECT_NE(halted.find("block checksum mismatch"), std::string::npos) << halted;
  EXPECT_TRUE(stream_->database_up()) << "not the database's fault";
  EXPECT_EQ(stream_->projected_seq(), 0u);
  // The stream keeps trying; once the log reads again, it goes on and the reason is cleared.
  source_.FailReads(std::nullopt);
  ASSERT_TRUE(WaitUntil([&] { return stream_->projected_seq() == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return stream_->halted().empty(); })) << stream_->halted();
  EXPECT_EQ(sink_->folded(), (std::vector<uint64_t>{1}));
}

TEST_F(StreamProjectorTest, AnUndecodableRecordHaltsTheStreamWithTheReasonInItsStatus) {
  source_.Append(TraceRecord(1));
  source_.Append(kGarbage);
  source_.Append(TraceRecord(3));
  stream_->Start();
  ASSERT_TRUE(WaitUntil([&] { return !stream_->halted().empty(); })) << "the stream never halted";
  EXPECT_NE(stream_->halted().find("WAL record 2: the record cannot be decoded"), std::string::npos)
      << stream_->halted();
  // Passes go on (the stream retries) without ever passing the record.
  const uint64_t attempts = stream_->attempts();
  ASSERT_TRUE(WaitUntil([&] { return stream_->attempts() >= attempts + 2; }));
  EXPECT_EQ(stream_->projected_seq(), 1u);
  EXPECT_EQ(sink_->stored(), 1u);
}

}  // namespace
}  // namespace xtrace::projector
