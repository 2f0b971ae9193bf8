#pragma once
// Exact size of the records committed since the log opened that the projector has not yet
// reported as projected: the capacity check counts these exactly rather than ask RocksDB, whose
// size estimate samples the memtable's skip list and can undercount recent records by a third,
// which would let the log grow past its cap.
//
// Memory is bounded: past max_groups entries, adjacent groups are merged. A merged entry is
// released only once its later half is projected, so the figure errs high, never low.
//
// Not thread-safe; the log guards it with its mutex.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

namespace xtrace::wal {

class UnprojectedBytes {
 public:
  explicit UnprojectedBytes(size_t max_groups = size_t{1} << 16) : max_groups_(max_groups) {}

  // A group of records ending at last_seq, bytes in all, was committed.
  void Add(uint64_t last_seq, uint64_t bytes) {
    if (groups_.size() >= max_groups_) Halve();
    groups_.emplace_back(last_seq, bytes);
    bytes_ += bytes;
  }

  // Everything up to and including seq is projected.
  void Release(uint64_t seq) {
    while (!groups_.empty() && groups_.front().first <= seq) {
      bytes_ -= groups_.front().second;
      groups_.pop_front();
    }
  }

  uint64_t bytes() const { return bytes_; }
  size_t groups() const { return groups_.size(); }

 private:
  void Halve() {
    std::deque<std::pair<uint64_t, uint64_t>> merged;
    for (size_t i = 0; i < groups_.size(); i += 2) {
      auto entry = groups_[i];
      if (i + 1 < groups_.size()) {
        entry.first = groups_[i + 1].first;
        entry.second += groups_[i + 1].second;
      }
      merged.push_back(entry);
    }
    groups_.swap(merged);
  }

  size_t max_groups_;
  std::deque<std::pair<uint64_t, uint64_t>> groups_;  // (last sequence, bytes), oldest first
  uint64_t bytes_ = 0;
};

}  // namespace xtrace::wal
