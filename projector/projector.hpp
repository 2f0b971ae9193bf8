#pragma once
// The projector thread: reads the WAL from the cursor stored in PostgreSQL and folds each chunk
// of records into the projections in one transaction together with the cursor move, fenced on
// the cursor's expected previous value. A crash between commit and anything else is harmless:
// the cursor and the rows move together or not at all.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "projector/fold.hpp"
#include "wal/log.hpp"

#include <pqxx/connection>
#include <pqxx/transaction_base>

namespace xtrace::projector {

struct Options {
  std::string database_url;
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

struct Status {
  uint64_t projected_seq = 0;        // last WAL sequence durably folded (0: none, or not yet known)
  bool database_up = false;          // the last attempt to talk to PostgreSQL succeeded
  uint64_t quarantined_records = 0;  // records PostgreSQL rejected, in projector_quarantine
};

class Projector {
 public:
  Projector(wal::Log& log, Options options);
  ~Projector();  // Stop()
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  void Start();
  // Finishes the transaction in flight (if any) and joins the thread. Idempotent.
  void Stop();

  Status status() const;

 private:
  void Run();
  bool Connect();  // false: failed; backoff and retry
  bool Step();     // one chunk; false when the log had nothing new
  void FoldChunk(const std::vector<wal::Entry>& entries);
  void FoldOneByOne(const std::vector<wal::Entry>& entries);
  void AdvanceCursor(pqxx::transaction_base& txn, uint64_t to);
  void SleepFor(std::chrono::milliseconds d);
  void Publish();  // cursor_ is durable: tell status() and the WAL

  wal::Log& log_;
  const Options options_;
  std::unique_ptr<pqxx::connection> conn_;
  SeriesCache series_;
  uint64_t cursor_ = 0;         // projector thread only
  bool reported_down_ = false;  // projector thread only

  std::atomic<uint64_t> projected_seq_{0};
  std::atomic<bool> database_up_{false};
  std::atomic<uint64_t> quarantined_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace xtrace::projector
