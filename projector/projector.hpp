#pragma once
// The projector: threads that read the WAL from cursors stored in PostgreSQL and fold each chunk
// of records into the projections in one transaction together with the cursor move, fenced on
// the cursor's expected previous value. A crash between commit and anything else is harmless:
// the cursor and the rows move together or not at all.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/fold.hpp"
#include "wal/log.hpp"

#include <pqxx/connection>
#include <pqxx/transaction_base>

namespace xtrace::projector {

struct Options {
  std::string database_url;
  // Each stream's session (statement timeout and the other limits, pg/session.hpp).
  pg::Session session = pg::SessionFor(pg::Role::kProjector);
  // Records folded per transaction at most. A chunk is whatever the log holds beyond the cursor up
  // to these limits, so its size adapts to the backlog: live traffic gives small, prompt chunks;
  // a backlog gives large ones, which amortize the per-statement and rollup-merge costs.
  size_t chunk_records = 4096;
  // Bytes of WAL records read per transaction at most: bounds projector memory whatever the
  // backlog (decoded records and statement arguments take several times this, so 8 MiB keeps
  // the server near 200 MB under load; 16 MiB drains a backlog about 1.8x faster for ~280 MB).
  size_t chunk_bytes = 8u << 20;
  // Retry delay after a failure doubles from min_backoff up to max_backoff.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

// Records are folded on one stream per kind, each with its own thread, connection and cursor
// row: a backlog of metric points never waits behind trace records or the reverse, and the two
// kinds use two PostgreSQL backends at once. The kinds write disjoint tables, so their relative
// order does not matter; within a stream, records are applied in WAL order.
enum class Stream { kTraces, kMetrics };
inline constexpr Stream kStreams[] = {Stream::kTraces, Stream::kMetrics};
const char* StreamName(Stream stream);  // "traces" / "metrics": the cursor row's key

struct StreamStatus {
  std::string name;
  uint64_t projected_seq = 0;  // last WAL sequence this stream durably folded or skipped
  uint64_t quarantined = 0;    // records of this stream set aside in projector_quarantine
  std::string halted;  // why the stream cannot go on (not PostgreSQL's fault); empty: it can
  // Passes the stream's loop has begun: each connects if needed, then folds the next chunk, or
  // waits for one, or fails and backs off. Tests wait on it to know the stream has tried again.
  uint64_t attempts = 0;
};

struct Status {
  uint64_t projected_seq = 0;        // least over the streams: everything up to it is projected
  bool database_up = false;          // every stream's last attempt to talk to PostgreSQL succeeded
  uint64_t quarantined_records = 0;  // records PostgreSQL rejected, in projector_quarantine
  std::vector<StreamStatus> streams;
};

class StreamProjector;

class Projector {
 public:
  Projector(wal::Log& log, Options options);
  ~Projector();  // Stop()
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  void Start();
  // Finishes the transactions in flight (if any) and joins the threads. A call still waiting on
  // PostgreSQL at `abandon_at` is abandoned then (its transaction never commits; the records
  // are projected after the next start). Idempotent.
  void Stop(pg::Clock::time_point abandon_at = pg::Clock::time_point::max());

  Status status() const;

 private:
  friend class StreamProjector;
  void Publish();  // a stream's cursor moved: tell the WAL the least of them

  wal::Log& log_;
  std::mutex publish_mu_;  // one stream at a time tells the WAL
  std::vector<std::unique_ptr<StreamProjector>> streams_;
};

// One stream: reads the WAL from its cursor, folds the records of its kind in chunks (one
// transaction per chunk, moving the cursor fenced on its expected previous value) and moves
// over the other kind's records.
class StreamProjector {
 public:
  StreamProjector(Projector& owner, wal::Log& log, Stream stream, Options options);
  ~StreamProjector();  // Stop()
  StreamProjector(const StreamProjector&) = delete;
  StreamProjector& operator=(const StreamProjector&) = delete;

  void Start();
  // Asks the thread to stop (see Projector::Stop) without waiting for it.
  void RequestStop(pg::Clock::time_point abandon_at);
  void Stop();

  uint64_t projected_seq() const { return projected_seq_.load(); }
  bool loaded() const { return loaded_.load(); }  // has read its stored cursor
  bool database_up() const { return database_up_.load(); }
  uint64_t quarantined() const { return quarantined_.load(); }
  std::string halted() const;  // empty unless the stream is halted (see Halted in projector.cpp)
  uint64_t attempts() const { return attempts_.load(); }  // see StreamStatus::attempts

 private:
  void Run();
  bool Connect();  // false: failed; backoff and retry
  // A chunk read from the log after `after` up to `to`: this stream's records, prepared.
  struct Batch {
    uint64_t after = 0, to = 0;    // to == after: the log had nothing new
    std::vector<wal::Entry> mine;  // what `prepared` holds; empty: only the other kind's
    PreparedChunkPtr prepared;
    double prepare_ms = 0;
  };
  bool Step();                       // one chunk; false when the log had nothing new
  Batch Load(uint64_t after) const;  // no database: runs beside the previous chunk's statements
  PreparedChunkPtr Prepare(const std::vector<wal::Entry>& entries) const;
  // Folds the batch and moves the cursor to batch.to, in one transaction.
  void Apply(Batch& batch);
  // Applies `entries` up to `to`, isolating and quarantining records PostgreSQL refuses.
  void Isolate(std::span<const wal::Entry> entries, uint64_t to);
  void Quarantine(const wal::Entry& entry, const std::exception& error);
  bool SetHalted(std::string reason);  // true when the reason changed
  void DropPrefetch();
  // Moves the stored cursor from stored_cursor_ to `to` in txn (fenced on its old value).
  void AdvanceCursor(pqxx::transaction_base& txn, uint64_t to);
  void Stored(uint64_t to);  // the transaction that moved the stored cursor to `to` committed
  void StoreCursor();        // stores cursor_ if the stored cursor is behind it
  void SleepFor(std::chrono::milliseconds d);
  void Publish();  // cursor_ moved: tell status() and the owner

  Projector& owner_;
  wal::Log& log_;
  const Stream stream_;
  const std::string name_;  // StreamName(stream_)
  const Options options_;
  std::unique_ptr<pqxx::connection> conn_;
  pg::Interrupter interrupter_;  // Stop() ends a wait on PostgreSQL through it
  SeriesCache series_;
  RollupCache rollups_;
  // A chunk of only the other kind's records moves the cursor in memory; the stored one
  // follows once it lags by this many records or this long (or the log goes idle).
  static constexpr uint64_t kLazyCursorRecords = 10000;
  static constexpr std::chrono::milliseconds kLazyCursorInterval{1000};

  std::future<Batch> next_;  // the chunk after cursor_'s, being read and prepared
  // Projector thread only: the position read up to, and the one stored in PostgreSQL (behind
  // it only by records of the other kind).
  uint64_t cursor_ = 0;
  uint64_t stored_cursor_ = 0;
  std::chrono::steady_clock::time_point stored_at_;
  bool reported_down_ = false;  // projector thread only

  std::atomic<uint64_t> projected_seq_{0};
  std::atomic<bool> loaded_{false};
  std::atomic<bool> database_up_{false};
  std::atomic<uint64_t> quarantined_{0};
  mutable std::mutex status_mu_;
  std::string halted_;  // guarded by status_mu_
  std::atomic<uint64_t> attempts_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace xtrace::projector
