#pragma once
// Read-only access to a WAL directory for tools. It takes no lock, so it works while a server
// has the log open, and sees the log as it was when opened.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/uuid.hpp"
#include "wal/log.hpp"

namespace xtrace::wal {

class Reader {
 public:
  static common::Result<std::unique_ptr<Reader>> Open(const std::string& dir);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const common::Uuid& id() const { return id_; }
  uint64_t FirstSequence() const { return first_seq_; }  // 0 when empty
  uint64_t LastSequence() const { return last_seq_; }    // 0 when empty
  uint64_t DiskBytes() const;

  // Records with sequence > after, in order, at most max_records, stopping early once max_bytes
  // have been gathered (at least one record is returned when one exists). Thread-safe.
  common::Result<std::vector<Entry>> Read(uint64_t after, size_t max_records,
                                          size_t max_bytes = SIZE_MAX) const;

 private:
  Reader() = default;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  common::Uuid id_;
  uint64_t first_seq_ = 0;
  uint64_t last_seq_ = 0;
};

}  // namespace xtrace::wal
