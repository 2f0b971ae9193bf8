#pragma once
// Where a projection stream reads its records: the calls the projection loop makes on the log,
// and nothing else. The loop depends on this interface, not on RocksDB, so the server's log, the
// replay tool's read-only view of a log, and an in-memory list (unit tests, quarantined records)
// are all projected by the same code.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "common/uuid.hpp"
#include "wal/log.hpp"
#include "wal/reader.hpp"

namespace xtrace::projector {

class Source {
 public:
  virtual ~Source() = default;

  // Names the log: rows keep it as their provenance, cursors and quarantined records are keyed
  // by it.
  virtual const common::Uuid& id() const = 0;

  // Up to max_records records with sequence > after, in order, stopping early once max_bytes
  // have been gathered (at least one record is returned when one exists). Called from another
  // thread than the other calls (the next chunk is read while the current one is applied).
  virtual common::Result<std::vector<wal::Entry>> Read(uint64_t after, size_t max_records,
                                                       size_t max_bytes) const = 0;

  // The highest sequence readable now; 0 when there is none.
  virtual uint64_t End() const = 0;

  // Blocks until End() > after or the timeout passes. A source that cannot grow returns at once.
  virtual void WaitBeyond(uint64_t after, std::chrono::milliseconds timeout) const = 0;

  // Whether every sequence up to End() is present unless trimmed: then a record missing right
  // after a cursor means records were trimmed under it, which is worth an error in the log.
  virtual bool Dense() const { return true; }
};

// The server's log.
class LogSource final : public Source {
 public:
  explicit LogSource(const wal::Log& log) : log_(log) {}
  const common::Uuid& id() const override { return log_.id(); }
  common::Result<std::vector<wal::Entry>> Read(uint64_t after, size_t max_records,
                                               size_t max_bytes) const override {
    return log_.Read(after, max_records, max_bytes);
  }
  uint64_t End() const override { return log_.LastSequence(); }
  void WaitBeyond(uint64_t after, std::chrono::milliseconds timeout) const override {
    log_.WaitForAppend(after, timeout);
  }

 private:
  const wal::Log& log_;
};

// A read-only view of a log (wal::Reader), up to `last` at most: the range a replay covers.
class ReaderSource final : public Source {
 public:
  ReaderSource(const wal::Reader& reader, uint64_t last) : reader_(reader), last_(last) {}
  const common::Uuid& id() const override { return reader_.id(); }
  common::Result<std::vector<wal::Entry>> Read(uint64_t after, size_t max_records,
                                               size_t max_bytes) const override;
  uint64_t End() const override { return last_; }
  void WaitBeyond(uint64_t, std::chrono::milliseconds) const override {}

 private:
  const wal::Reader& reader_;
  const uint64_t last_;
};

// Records held in memory, in sequence order: the records of a log that were quarantined (their
// sequences have gaps: Dense() is false), or a log a unit test writes. Thread-safe.
class MemorySource : public Source {
 public:
  explicit MemorySource(common::Uuid id, std::vector<wal::Entry> entries = {}, bool dense = true);
  const common::Uuid& id() const override { return id_; }
  common::Result<std::vector<wal::Entry>> Read(uint64_t after, size_t max_records,
                                               size_t max_bytes) const override;
  uint64_t End() const override;
  void WaitBeyond(uint64_t after, std::chrono::milliseconds timeout) const override;
  bool Dense() const override { return dense_; }

  // Adds a record after the last one; returns its sequence.
  uint64_t Append(std::string bytes);

 private:
  const common::Uuid id_;
  const bool dense_;
  mutable std::mutex mu_;
  mutable std::condition_variable appended_;
  std::vector<wal::Entry> entries_;  // ascending seq
};

}  // namespace xtrace::projector
