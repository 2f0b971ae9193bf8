#include "projector/projector.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/transaction>

#include "projector/failure.hpp"
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

// The stream cannot go on for a reason that is not PostgreSQL's: a record this build cannot
// decode (usually one written by a newer build), or the WAL failed to read. Skipping would lose
// an acknowledged record for good, so projection halts at the record, keeps its connection and
// retries with backoff until the cause is gone (a build that reads it, a readable disk). Ingest
// is unaffected; status and /readyz show the reason.
class Halted : public std::runtime_error {
 public:
  Halted(uint64_t seq, const std::string& why)
      : std::runtime_error("projection halted at WAL record " + std::to_string(seq) + ": " + why),
        seq_(seq) {}
  uint64_t seq() const { return seq_; }

 private:
  uint64_t seq_;
};

std::string Hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0x0F]);
  }
  return hex;
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

void Projector::Stop(pg::Clock::time_point abandon_at) {
  // Every stream is told first, then joined: their waits on PostgreSQL overlap, not add up.
  for (auto& s : streams_) s->RequestStop(abandon_at);
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
    st.streams.push_back({StreamName(kStreams[i]), seq, s.quarantined(), s.halted(), s.attempts()});
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

void StreamProjector::RequestStop(pg::Clock::time_point abandon_at) {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  interrupter_.InterruptAt(abandon_at);
  cv_.notify_all();
}

void StreamProjector::Stop() {
  RequestStop(pg::Clock::time_point::max());
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
      bool idle = false;
      {
        // A PostgreSQL that stops answering mid-chunk ends the chunk as an outage.
        pg::CallGuard guard(*conn_, options_.session.call_deadline(), &interrupter_);
        idle = !Step();
        SetHalted({});
        if (idle) StoreCursor();  // the stored cursor catches up with records skipped in memory
      }
      if (idle) log_.WaitForAppend(cursor_, std::chrono::milliseconds(200));
      backoff = options_.min_backoff;
    } catch (const CursorFenced& e) {
      spdlog::warn("projector[{}]: {}; reloading", name_, e.what());
      DropPrefetch();
      conn_.reset();
    } catch (const Halted& e) {
      // Not PostgreSQL's fault: the connection stays, and status says why the stream stopped.
      if (SetHalted(e.what())) spdlog::error("projector[{}]: {}", name_, e.what());
      DropPrefetch();
      SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
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
    if (conn_) {
      pg::CallGuard guard(*conn_, options_.session.call_deadline(), &interrupter_);
      StoreCursor();  // a clean stop leaves the stored cursor where the stream is
    }
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
    auto conn = pg::Connect(options_.database_url, options_.session, &interrupter_);
    pg::CallGuard guard(*conn, options_.session.call_deadline(), &interrupter_);
    ApplyMigrations(*conn);
    pqxx::work txn(*conn);
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
  if (!entries) throw Halted(after + 1, "the WAL cannot be read: " + entries.error().message);
  if (entries->empty()) return batch;
  if (entries->front().seq != after + 1) {
    // Records below the first retained one were trimmed; only possible if the cursor row was
    // reset by hand. Resume from what the log still has.
    spdlog::error("projector[{}]: WAL has no record {} (next is {}); skipping the gap", name_,
                  after + 1, entries->front().seq);
  }
  batch.to = entries->back().seq;
  const auto own =
      stream_ == Stream::kTraces ? schema::RecordKind::kEntities : schema::RecordKind::kMetrics;
  for (auto& e : *entries) {
    const auto kind = schema::PeekRecordKind(e.bytes);
    if (!kind) throw Halted(e.seq, "the record cannot be decoded: " + kind.error().message);
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
    if (!record) throw Halted(e.seq, "the record cannot be decoded: " + record.error().message);
    decoded.push_back(std::move(*record));
  }
  std::vector<SequencedRecord> records;
  records.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) records.push_back({entries[i].seq, &decoded[i]});
  try {
    return PrepareChunk(records, log_.id());
  } catch (const UnfoldableRecord& e) {
    throw Halted(e.seq(), e.what());
  }
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
  } catch (const std::exception& e) {
    if (ClassifyFailure(e) != FailureKind::kData) throw;
    spdlog::warn("projector[{}]: records {}..{} refused ({}); isolating the record responsible",
                 name_, batch.after + 1, batch.to, e.what());
    const std::span<const wal::Entry> mine(batch.mine);
    const size_t half = mine.size() / 2;
    if (half == 0) {
      Isolate(mine, batch.to);
    } else {
      Isolate(mine.first(half), mine[half - 1].seq);
      Isolate(mine.subspan(half), batch.to);
    }
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
  auto t1 = t0;
  try {
    ApplyChunk(txn, *batch.prepared, touched, series_, &rollups_);
    t1 = Clock::now();
    RefreshTraceAggregates(txn, touched);
    AdvanceCursor(txn, batch.to);
    txn.commit();
  } catch (...) {
    // What this transaction learnt or wrote is gone with it.
    series_.Abandon();
    rollups_.Abandon();
    throw;
  }
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

void StreamProjector::Isolate(std::span<const wal::Entry> entries, uint64_t to) {
  // Folds `entries` and moves the cursor to `to` in one transaction; when PostgreSQL refuses the
  // rows, bisects: a refused chunk of n records costs about 2 log2(n) transactions to find its
  // one bad record, and the good ones around it are folded in as few transactions as possible.
  Batch batch;
  batch.after = cursor_;
  batch.to = to;
  batch.mine.assign(entries.begin(), entries.end());
  batch.prepared = Prepare(batch.mine);
  try {
    Apply(batch);
    return;
  } catch (const std::exception& e) {
    if (ClassifyFailure(e) != FailureKind::kData || entries.empty()) throw;
    if (entries.size() == 1) {
      Quarantine(entries.front(), e);
      if (cursor_ < to) Isolate({}, to);  // past the other kind's records after it
      return;
    }
  }
  const size_t half = entries.size() / 2;
  Isolate(entries.first(half), entries[half - 1].seq);
  Isolate(entries.subspan(half), to);
}

void StreamProjector::Quarantine(const wal::Entry& entry, const std::exception& error) {
  // The record alone is refused: set it aside with its bytes and the error, so its neighbours
  // are not held back. It stays in projector_quarantine until xtrace-replay --quarantined
  // projects it (after an upgrade that accepts it) or an operator deletes it.
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error);
  const std::string sqlstate = sql != nullptr ? sql->sqlstate() : "";
  spdlog::error("projector[{}]: WAL record {} refused by PostgreSQL, quarantined: {}", name_,
                entry.seq, error.what());
  pqxx::work txn(*conn_);
  txn.exec_params(
      "INSERT INTO projector_quarantine (wal_id, seq, stream, sqlstate, error, record) "
      "VALUES ($1::uuid, $2, $3, $4, $5, decode($6, 'hex')) ON CONFLICT DO NOTHING",
      log_.id().ToString(), entry.seq, name_, sqlstate, std::string(error.what()),
      Hex(entry.bytes));
  AdvanceCursor(txn, entry.seq);
  txn.commit();
  Stored(entry.seq);
  quarantined_++;
}

bool StreamProjector::SetHalted(std::string reason) {
  std::lock_guard lock(status_mu_);
  if (halted_ == reason) return false;
  halted_ = std::move(reason);
  return true;
}

std::string StreamProjector::halted() const {
  std::lock_guard lock(status_mu_);
  return halted_;
}

}  // namespace xtrace::projector
