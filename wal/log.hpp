#pragma once
// The write-ahead log: opaque records in RocksDB under gap-free, big-endian uint64 sequence
// numbers. One committer thread owns the sequence counter; appends from any thread are gathered
// into one WriteBatch per fsync (group commit), so I/O threads never wait on the disk.
//
// On-disk layout (RocksDB column families):
//   default : key = 8-byte big-endian sequence (first record is 1), value = record bytes
//   meta    : "wal_id" = 16-byte UUID naming this log (the projector's cursor is keyed by it)

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/uuid.hpp"
#include "wal/appender.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
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
};

struct Entry {
  uint64_t seq = 0;
  std::string bytes;
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

  // Thread-safe and non-blocking. After Close() (or shutdown) the callback gets kUnavailable.
  void Append(std::string record, AppendCallback done) override;

  // Highest durable sequence number; 0 when the log has never held a record.
  uint64_t LastSequence() const { return last_seq_.load(std::memory_order_acquire); }

  // Up to max_records records with sequence > after, in order, stopping early once max_bytes
  // have been gathered (at least one record is always returned when one exists).
  common::Result<std::vector<Entry>> Read(uint64_t after, size_t max_records,
                                          size_t max_bytes) const;

  // Blocks until LastSequence() > after, the timeout passes, or the log is closing.
  void WaitForAppend(uint64_t after, std::chrono::milliseconds timeout) const;

  // Stops accepting appends, commits what is pending and joins the committer. Idempotent.
  void Close();

  // False after a group commit failed (disk full, I/O error) or once closing; true again after
  // the next successful commit. Readiness reports it.
  bool AcceptingWrites() const { return accepting_.load(std::memory_order_relaxed); }

  // Number of group commits so far and records they carried (requests per fsync = ratio).
  uint64_t CommitCount() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t CommittedRecords() const { return committed_records_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    std::string record;
    AppendCallback done;
  };

  Log(const Options& options, std::unique_ptr<rocksdb::DB> db,
      std::vector<rocksdb::ColumnFamilyHandle*> handles, common::Uuid id, uint64_t last_seq);
  void CommitLoop();
  void CommitGroup(std::vector<Pending>& group);

  const Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [default, meta]
  const common::Uuid id_;

  std::atomic<uint64_t> last_seq_;
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> committed_records_{0};

  mutable std::mutex mu_;
  std::condition_variable pending_cv_;           // committer waits for work
  mutable std::condition_variable appended_cv_;  // readers wait for new records
  std::vector<Pending> pending_;
  size_t pending_bytes_ = 0;
  bool closing_ = false;
  std::thread committer_;
};

// Big-endian key encoding, exposed for tools and tests.
std::string SequenceKey(uint64_t seq);
uint64_t SequenceFromKey(std::string_view key);

}  // namespace xtrace::wal
