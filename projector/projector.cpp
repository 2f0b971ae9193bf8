#include "projector/projector.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/transaction>

#include "projector/fold.hpp"
#include "projector/migrator.hpp"
#include "schema/codec.hpp"

namespace xtrace::projector {
namespace {

// Someone else moved our cursor (another projector on the same WAL id): reload it and go on.
class CursorFenced : public std::runtime_error {
 public:
  CursorFenced() : std::runtime_error("projector cursor moved underneath us") {}
};

// A record this build cannot decode. Skipping would lose an acknowledged record for good. The
// usual cause is a record written by a newer build (format version): projection halts here,
// retrying with backoff, until a build that reads it runs. Ingest is unaffected; the lag shows in
// /readyz.
class Undecodable : public std::runtime_error {
 public:
  Undecodable(uint64_t seq, const std::string& why)
      : std::runtime_error("WAL record " + std::to_string(seq) + " cannot be decoded (" + why +
                           "); projection halted at this record") {}
};

// Integrity and data errors are about the rows, not the connection: retrying the same chunk
// would fail forever, so the chunk is re-applied record by record to isolate the bad one.
bool IsDataError(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.starts_with("22") || state.starts_with("23");
}

}  // namespace

const char* StreamName(Stream stream) {
  return stream == Stream::kTraces ? "traces" : "metrics";
}

Projector::Projector(wal::Log& log, Options options) : log_(log) {
  for (const Stream stream : kStreams) {
    streams_.push_back(std::make_unique<StreamProjector>(*this, log, stream, options));
  }
}

Projector::~Projector() {
  Stop();
}

void Projector::Start() {
  for (auto& s : streams_) s->Start();
}

void Projector::Stop() {
  for (auto& s : streams_) s->Stop();
}

void Projector::Publish() {
  std::lock_guard lock(publish_mu_);
  uint64_t least = UINT64_MAX, furthest = 0;
  for (const auto& s : streams_) {
    // Until every stream has read its stored cursor, the WAL keeps what the server told it at
    // start (a stream not yet connected would otherwise count as having projected nothing).
    if (!s->loaded()) return;
    const uint64_t seq = s->projected_seq();
    least = std::min(least, seq);
    furthest = std::max(furthest, seq);
  }
  log_.SetProjected(least, furthest);  // lets the WAL trim and shrink its backlog
}

Status Projector::status() const {
  Status st;
  st.projected_seq = UINT64_MAX;
  st.database_up = true;
  for (size_t i = 0; i < streams_.size(); ++i) {
    const auto& s = *streams_[i];
    const uint64_t seq = s.projected_seq();
    st.projected_seq = std::min(st.projected_seq, seq);
    st.database_up = st.database_up && s.database_up();
    st.quarantined_records += s.quarantined();
    st.streams.push_back({StreamName(kStreams[i]), seq, s.attempts()});
  }
  return st;
}

StreamProjector::StreamProjector(Projector& owner, wal::Log& log, Stream stream, Options options)
    : owner_(owner),
      log_(log),
      stream_(stream),
      name_(StreamName(stream)),
      options_(std::move(options)) {}

StreamProjector::~StreamProjector() {
  Stop();
}

void StreamProjector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void StreamProjector::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamProjector::Publish() {
  projected_seq_ = cursor_;
  owner_.Publish();
}

void StreamProjector::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_; });
}

void StreamProjector::Run() {
  auto backoff = options_.min_backoff;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    attempts_++;  // observable progress for tests (StreamStatus::attempts)
    try {
      if (!conn_ && !Connect()) {
        SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      if (!Step()) {
        StoreCursor();  // idle: the stored cursor catches up with records skipped in memory
        log_.WaitForAppend(cursor_, std::chrono::milliseconds(200));
      }
      backoff = options_.min_backoff;
    } catch (const CursorFenced& e) {
      spdlog::warn("projector[{}]: {}; reloading", name_, e.what());
      DropPrefetch();
      conn_.reset();
    } catch (const std::exception& e) {
      spdlog::warn("projector[{}]: {} (retrying in {} ms)", name_, e.what(), backoff.count());
      DropPrefetch();
      database_up_ = false;
      conn_.reset();
      SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  DropPrefetch();
  try {
    StoreCursor();  // a clean stop leaves the stored cursor where the stream is
  } catch (const std::exception& e) {
    spdlog::warn("projector[{}]: cursor not stored at stop: {}", name_, e.what());
  }
  conn_.reset();
}

void StreamProjector::DropPrefetch() {
  if (next_.valid()) next_.wait();  // its thread reads the log: let it finish first
  next_ = {};
}

bool StreamProjector::Connect() {
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.database_url);
    ApplyMigrations(*conn);
    pqxx::work txn(*conn);
    txn.exec0("SET TIME ZONE 'UTC'");
    txn.exec_params(
        "INSERT INTO projector_cursors (wal_id, stream, seq) VALUES ($1::uuid, $2, 0) "
        "ON CONFLICT (wal_id, stream) DO NOTHING",
        log_.id().ToString(), name_);
    const auto row = txn.exec_params1(
        "SELECT seq FROM projector_cursors WHERE wal_id = $1::uuid AND stream = $2",
        log_.id().ToString(), name_);
    const auto quarantined = txn.exec_params1(
        "SELECT count(*) FROM projector_quarantine WHERE wal_id = $1::uuid AND stream = $2",
        log_.id().ToString(), name_);
    txn.commit();
    cursor_ = stored_cursor_ = row[0].as<uint64_t>();
    stored_at_ = std::chrono::steady_clock::now();
    quarantined_ = quarantined[0].as<uint64_t>();
    PrepareFoldStatements(*conn);
    if (stream_ == Stream::kMetrics) {
      if (const uint64_t points = RebuildRollupsIfMissing(*conn); points > 0) {
        spdlog::info("projector[{}]: rebuilt metric rollups from {} stored points", name_, points);
      }
    }
    conn_ = std::move(conn);
    loaded_ = true;
    Publish();
    database_up_ = true;
    reported_down_ = false;
    spdlog::info("projector[{}]: connected; WAL {} projected up to {}", name_, log_.id().ToString(),
                 cursor_);
    return true;
  } catch (const std::exception& e) {
    // Logged once per outage, not on every retry.
    if (!reported_down_)
      spdlog::warn("projector[{}]: cannot reach PostgreSQL: {}", name_, e.what());
    reported_down_ = true;
    database_up_ = false;
    return false;
  }
}

StreamProjector::Batch StreamProjector::Load(uint64_t after) const {
  const auto t0 = std::chrono::steady_clock::now();
  Batch batch;
  batch.after = after;
  batch.to = after;
  auto entries = log_.Read(after, options_.chunk_records, options_.chunk_bytes);
  if (!entries) throw common::ErrorException(entries.error());
  if (entries->empty()) return batch;
  if (entries->front().seq != after + 1) {
    // Records below the first retained one were trimmed; only possible if the cursor row was
    // reset by hand. Resume from what the log still has.
    spdlog::error("projector[{}]: WAL has no record {} (next is {}); skipping the gap", name_,
                  after + 1, entries->front().seq);
  }
  batch.to = entries->back().seq;
  const auto own = stream_ == Stream::kTraces ? schema::RecordKind::kTraceBatch
                                              : schema::RecordKind::kMetricBatch;
  for (auto& e : *entries) {
    const auto kind = schema::PeekRecordKind(e.bytes);
    if (!kind) throw Undecodable(e.seq, kind.error().message);
    if (*kind == own) batch.mine.push_back(std::move(e));
  }
  batch.prepared = Prepare(batch.mine);
  batch.prepare_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return batch;
}

PreparedChunkPtr StreamProjector::Prepare(const std::vector<wal::Entry>& entries) const {
  std::vector<schema::WalRecord> decoded;
  decoded.reserve(entries.size());
  for (const auto& e : entries) {
    auto record = schema::DecodeRecord(e.bytes);
    if (!record) throw Undecodable(e.seq, record.error().message);
    decoded.push_back(std::move(*record));
  }
  std::vector<SequencedRecord> records;
  records.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) records.push_back({entries[i].seq, &decoded[i]});
  return PrepareChunk(records, log_.id());
}

bool StreamProjector::Step() {
  if (!next_.valid()) {
    if (log_.LastSequence() <= cursor_) return false;
    next_ = std::async(std::launch::async, [this, after = cursor_] { return Load(after); });
  }
  Batch batch = next_.get();
  if (batch.after != cursor_) return true;  // read for another position (cannot happen): reload
  if (batch.to == batch.after) return false;
  // The next chunk is read and prepared on another thread while this one's statements run.
  if (log_.LastSequence() > batch.to) {
    next_ = std::async(std::launch::async, [this, after = batch.to] { return Load(after); });
  }
  try {
    Apply(batch);
  } catch (const pqxx::sql_error& e) {
    if (!IsDataError(e)) throw;
    spdlog::warn("projector[{}]: chunk {}..{} rejected ({}); folding record by record", name_,
                 batch.after + 1, batch.to, e.what());
    FoldOneByOne(batch);
  }
  return true;
}

void StreamProjector::AdvanceCursor(pqxx::transaction_base& txn, uint64_t to) {
  const auto result = txn.exec_params(
      "UPDATE projector_cursors SET seq = $1, updated_at = now() "
      "WHERE wal_id = $2::uuid AND stream = $3 AND seq = $4",
      to, log_.id().ToString(), name_, stored_cursor_);
  if (result.affected_rows() != 1) throw CursorFenced();
}

void StreamProjector::Stored(uint64_t to) {
  cursor_ = stored_cursor_ = to;
  stored_at_ = std::chrono::steady_clock::now();
  Publish();
}

void StreamProjector::StoreCursor() {
  if (!conn_ || stored_cursor_ == cursor_) return;
  pqxx::work txn(*conn_);
  AdvanceCursor(txn, cursor_);
  txn.commit();
  Stored(cursor_);
}

void StreamProjector::Apply(Batch& batch) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (batch.mine.empty() && batch.to - stored_cursor_ < kLazyCursorRecords &&
      t0 - stored_at_ < kLazyCursorInterval) {
    // Only the other kind's records: nothing to write but the cursor, and under mixed live
    // traffic that would be a commit per chunk. The stream moves on in memory; the stored
    // cursor follows within these bounds, or when the log goes idle. Re-reading the skipped
    // records after a crash finds nothing to do in them again.
    cursor_ = batch.to;
    Publish();
    return;
  }
  pqxx::work txn(*conn_);
  std::set<TraceKey> touched;
  ApplyChunk(txn, *batch.prepared, touched, series_, &rollups_);
  const auto t1 = Clock::now();
  RefreshTraceAggregates(txn, touched);
  AdvanceCursor(txn, batch.to);
  txn.commit();
  series_.Commit();
  rollups_.Commit();
  const auto t2 = Clock::now();
  Stored(batch.to);
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  spdlog::debug(
      "projector[{}]: {} records to {}: prepare {:.1f} ms (beside the previous chunk), "
      "fold {:.1f} ms, aggregates and commit {:.1f} ms",
      name_, batch.mine.size(), cursor_, batch.prepare_ms, ms(t1 - t0), ms(t2 - t1));
}

void StreamProjector::FoldOneByOne(const Batch& batch) {
  for (const auto& e : batch.mine) {
    try {
      Batch one;
      one.after = cursor_;
      one.to = e.seq;
      one.mine = {e};
      one.prepared = Prepare(one.mine);
      Apply(one);
    } catch (const pqxx::sql_error& err) {
      if (!IsDataError(err)) throw;
      // Quarantine the rejected record alone, so its neighbours are not held back; it stays
      // retrievable, with the error, in projector_quarantine.
      spdlog::error("projector[{}]: WAL record {} rejected by PostgreSQL, quarantined: {}", name_,
                    e.seq, err.what());
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      hex.reserve(e.bytes.size() * 2);
      for (unsigned char c : e.bytes) {
        hex.push_back(kHex[c >> 4]);
        hex.push_back(kHex[c & 0x0F]);
      }
      pqxx::work txn(*conn_);
      txn.exec_params(
          "INSERT INTO projector_quarantine (wal_id, seq, stream, sqlstate, error, record) "
          "VALUES ($1::uuid, $2, $3, $4, $5, decode($6, 'hex')) ON CONFLICT DO NOTHING",
          log_.id().ToString(), e.seq, name_, err.sqlstate(), std::string(err.what()), hex);
      AdvanceCursor(txn, e.seq);
      txn.commit();
      Stored(e.seq);
      quarantined_++;
    }
  }
  if (cursor_ < batch.to) {  // past the other kind's records after the last of ours
    Batch rest;
    rest.after = cursor_;
    rest.to = batch.to;
    rest.prepared = Prepare({});
    Apply(rest);
  }
}

}  // namespace xtrace::projector
