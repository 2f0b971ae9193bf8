#include "projector/source.hpp"

#include <algorithm>

namespace xtrace::projector {

common::Result<std::vector<wal::Entry>> ReaderSource::Read(uint64_t after, size_t max_records,
                                                           size_t max_bytes) const {
  if (after >= last_) return std::vector<wal::Entry>{};
  return reader_.Read(after, std::min<uint64_t>(max_records, last_ - after), max_bytes);
}

MemorySource::MemorySource(common::Uuid id, std::vector<wal::Entry> entries, bool dense)
    : id_(id), dense_(dense), entries_(std::move(entries)) {}

common::Result<std::vector<wal::Entry>> MemorySource::Read(uint64_t after, size_t max_records,
                                                           size_t max_bytes) const {
  std::lock_guard lock(mu_);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), after,
                             [](uint64_t seq, const wal::Entry& e) { return seq < e.seq; });
  std::vector<wal::Entry> out;
  size_t bytes = 0;
  for (; it != entries_.end() && out.size() < max_records; ++it) {
    if (!out.empty() && bytes + it->bytes.size() > max_bytes) break;
    bytes += it->bytes.size();
    out.push_back(*it);
  }
  return out;
}

uint64_t MemorySource::End() const {
  std::lock_guard lock(mu_);
  return entries_.empty() ? 0 : entries_.back().seq;
}

void MemorySource::WaitBeyond(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  appended_.wait_for(lock, timeout,
                     [&] { return !entries_.empty() && entries_.back().seq > after; });
}

uint64_t MemorySource::Append(std::string bytes) {
  uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    seq = entries_.empty() ? 1 : entries_.back().seq + 1;
    entries_.push_back({seq, std::move(bytes)});
  }
  appended_.notify_all();
  return seq;
}

}  // namespace xtrace::projector
