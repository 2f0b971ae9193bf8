#pragma once
// The write-ahead log: opaque records in RocksDB under gap-free, big-endian uint64 sequence
// numbers. One committer thread owns the sequence counter; appends from any thread are gathered
// into one WriteBatch per fsync (group commit), so I/O threads never wait on the disk.
//
// On-disk layout (RocksDB column families):
//   default : key = 8-byte big-endian sequence (first record is 1), value = record bytes
//   meta    : "wal_id"        = 16-byte UUID naming this log (projector cursors are keyed by it)
//             "t/" + BE64(m)  = BE64(first sequence committed during UTC minute m): the time
//                               index that retention trimming reads; one entry per minute
//
// Capacity: an append is refused (kWalFull) when the unprojected backlog would exceed
// max_backlog_bytes or the disk holding the log has less than min_free_disk_bytes free; it is
// refused (kWalUnavailable) after a failed write until RocksDB resumes. Both clear by themselves.
//
// Trimming: records at or below the projected sequence and older than the retention window are
// removed with DeleteRange by a maintenance thread; the window is what the replay tool can reach.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/uuid.hpp"
#include "wal/appender.hpp"
#include "wal/backlog.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
}  // namespace rocksdb

namespace xtrace::wal {

struct Options {
  // Directory of the RocksDB instance; created when missing.
  std::string dir = "./data/wal";
  // fsync every group commit before acknowledging. Turning it off voids the durability promise
  // and exists only to measure the ceiling in benchmarks.
  bool sync = true;
  // Upper bound on the bytes one group commit gathers; the rest waits for the next commit.
  // Bounds the latency of one fsync and the size of one WriteBatch. Default 16 MiB.
  size_t max_commit_bytes = 16u << 20;
  // Unprojected backlog (records above the projected sequence: counted exactly when appended
  // since open, sized by RocksDB when found at open) beyond which appends are refused with
  // kWalFull. Default 4 GiB.
  uint64_t max_backlog_bytes = uint64_t{4} << 30;
  // Free space below which appends are refused with kWalFull, so the disk never fills up to the
  // point where RocksDB itself fails. Default 256 MiB.
  uint64_t min_free_disk_bytes = uint64_t{256} << 20;
  // Projected records younger than this are kept for replay. Default 24 h.
  std::chrono::seconds retention{24 * 3600};
  // How often the maintenance thread refreshes the backlog and free-space figures.
  std::chrono::milliseconds maintenance_interval{200};
  // Test seam: the RocksDB environment all of the log's file I/O goes through; null (the
  // default) means RocksDB's default environment. Crash tests pass one whose file system keeps
  // only what was fsync'd at a simulated power loss. Only forward-declared here, so that users
  // of the log keep seeing no RocksDB header; whoever sets it includes <rocksdb/env.h>.
  std::shared_ptr<rocksdb::Env> env;
};

struct Entry {
  uint64_t seq = 0;
  std::string bytes;
};

struct Stats {
  uint64_t first_seq = 0;  // lowest retained sequence (0: empty log)
  uint64_t last_seq = 0;   // highest durable sequence (0: never written)
  uint64_t projected_seq = 0;
  uint64_t disk_bytes = 0;     // SST + live WAL files
  uint64_t backlog_bytes = 0;  // estimate of the unprojected records
  uint64_t free_disk_bytes = 0;
  bool accepting_writes = true;
  std::string refusal;  // why appends are refused, when they are
  uint64_t commits = 0;
  uint64_t committed_records = 0;
  uint64_t trimmed_records = 0;
  // Trim passes the maintenance thread has completed (whether or not they removed anything): a
  // test waits for it to advance before asserting that something was not trimmed.
  uint64_t trim_passes = 0;
};

class Log final : public Appender {
 public:
  // Opens (creating if needed) and recovers the log. A torn tail left by a crash is dropped up to
  // the last consistent point, which includes every record whose append was acknowledged.
  static common::Result<std::unique_ptr<Log>> Open(const Options& options);

  // Commits everything still pending, then closes the database.
  ~Log() override;
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  const common::Uuid& id() const { return id_; }

  // Thread-safe and non-blocking. Refused at once (kWalFull / kWalUnavailable) when the log is
  // over capacity, failing or closing.
  void Append(std::string record, AppendCallback done) override;

  // Highest durable sequence number; 0 when the log has never held a record.
  uint64_t LastSequence() const { return last_seq_.load(std::memory_order_acquire); }

  // Up to max_records records with sequence > after, in order, stopping early once max_bytes
  // have been gathered (at least one record is always returned when one exists).
  common::Result<std::vector<Entry>> Read(uint64_t after, size_t max_records,
                                          size_t max_bytes) const;

  // Blocks until LastSequence() > after, the timeout passes, or the log is closing.
  void WaitForAppend(uint64_t after, std::chrono::milliseconds timeout) const;

  // The projector reports how far it has durably projected: `seq` is what every reader of the
  // log has projected (trimming and the backlog use it), `furthest` the position of the reader
  // that is furthest ahead (default: seq). A position beyond LastSequence() means the log lost
  // records it once held (a damaged or restored disk): new records then continue after it
  // rather than reuse sequence numbers a reader has already passed, which would hide them from
  // that reader.
  void SetProjected(uint64_t seq, uint64_t furthest = 0);

  // Stops accepting appends, commits what is pending and joins the threads. Idempotent.
  void Close();

  // False while appends are refused (see refusal in Stats), or the backlog is so close to its cap
  // that a typical request would be (readiness: better another node takes the traffic).
  bool AcceptingWrites() const;

  Stats GetStats() const;

 private:
  struct Pending {
    std::string record;
    AppendCallback done;
  };

  Log(const Options& options, std::unique_ptr<rocksdb::DB> db,
      std::vector<rocksdb::ColumnFamilyHandle*> handles, common::Uuid id, uint64_t first_seq,
      uint64_t last_seq);
  void CommitLoop();
  void CommitGroup(std::vector<Pending>& group);
  void MaintenanceLoop();
  void RefreshCapacity();
  void Reopen();
  void Trim();
  std::optional<common::Error> Refusal(size_t incoming_bytes) const;
  uint64_t BacklogBytes() const;  // holds mu_
  size_t ReadinessHeadroom() const;

  const Options options_;
  // db_ and handles_ are replaced only by Reopen() (after a failed write), under the exclusive
  // lock; every other use holds the shared lock. db_ is null only if even a read-only reopen
  // failed.
  mutable std::shared_mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [default, meta]
  const common::Uuid id_;

  std::atomic<uint64_t> first_seq_;
  std::atomic<uint64_t> last_seq_;
  std::atomic<uint64_t> projected_seq_{0};
  std::atomic<uint64_t> min_next_seq_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> committed_records_{0};
  std::atomic<uint64_t> trimmed_records_{0};
  std::atomic<uint64_t> trim_passes_{0};
  // The backlog is opened_backlog_bytes_ + unprojected_: records this log held when it opened
  // are sized by RocksDB (the maintenance thread refreshes the figure as they are projected),
  // records appended since are counted exactly as they commit.
  const uint64_t opened_last_seq_;
  std::atomic<uint64_t> opened_backlog_bytes_{0};
  std::atomic<uint64_t> free_disk_bytes_{UINT64_MAX};
  std::atomic<uint64_t> disk_bytes_{0};
  std::atomic<bool> write_failed_{false};  // last group commit failed; cleared on success
  int64_t last_indexed_minute_ = -1;       // committer thread only

  mutable std::mutex mu_;
  std::condition_variable pending_cv_;           // committer waits for work
  mutable std::condition_variable appended_cv_;  // readers wait for new records
  std::condition_variable maintenance_cv_;
  std::vector<Pending> pending_;
  size_t pending_bytes_ = 0;
  UnprojectedBytes unprojected_;  // groups committed since open and not yet projected
  bool closing_ = false;
  std::thread committer_;
  std::thread maintenance_;
};

// Big-endian key encoding, exposed for tools and tests.
std::string SequenceKey(uint64_t seq);
uint64_t SequenceFromKey(std::string_view key);

}  // namespace xtrace::wal
