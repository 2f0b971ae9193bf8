#include "wal/log.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <cstring>

namespace xtrace::wal {
namespace {

using common::Error;
using common::ErrorCode;

constexpr char kMetaFamily[] = "meta";
constexpr char kWalIdKey[] = "wal_id";

Error Unavailable(const std::string& what, const rocksdb::Status& s) {
  return Error{ErrorCode::kUnavailable, what + ": " + s.ToString(), {}};
}

}  // namespace

std::string SequenceKey(uint64_t seq) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[static_cast<size_t>(i)] = static_cast<char>(seq & 0xFF);
    seq >>= 8;
  }
  return key;
}

uint64_t SequenceFromKey(std::string_view key) {
  uint64_t seq = 0;
  for (size_t i = 0; i < 8 && i < key.size(); ++i) {
    seq = (seq << 8) | static_cast<unsigned char>(key[i]);
  }
  return seq;
}

common::Result<std::unique_ptr<Log>> Log::Open(const Options& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // After a crash the RocksDB WAL may end in a torn write. Point-in-time recovery replays up to
  // the last intact entry and drops the rest: a torn entry was never fsync-acknowledged, while
  // kAbsoluteConsistency would refuse to open and kSkipAnyCorruptedRecords could skip a hole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  rocksdb::ColumnFamilyOptions cf_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options}, {kMetaFamily, cf_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto status = rocksdb::DB::Open(db_options, options.dir, families, &handles, &raw);
  if (!status.ok()) return Unavailable("cannot open WAL in " + options.dir, status);
  std::unique_ptr<rocksdb::DB> db(raw);

  // The log's identity: created once, then read back on every open.
  std::string id_bytes;
  common::Uuid id;
  status = db->Get(rocksdb::ReadOptions(), handles[1], kWalIdKey, &id_bytes);
  if (status.IsNotFound()) {
    id = common::Uuid::Random();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    status = db->Put(wo, handles[1], kWalIdKey,
                     rocksdb::Slice(reinterpret_cast<const char*>(id.bytes.data()), 16));
    if (!status.ok()) return Unavailable("cannot write WAL id", status);
  } else if (!status.ok() || id_bytes.size() != 16) {
    return Unavailable("cannot read WAL id", status);
  } else {
    std::memcpy(id.bytes.data(), id_bytes.data(), 16);
  }

  uint64_t last_seq = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[0]));
    it->SeekToLast();
    if (it->Valid()) last_seq = SequenceFromKey(it->key().ToStringView());
    if (!it->status().ok()) return Unavailable("cannot scan WAL", it->status());
  }
  spdlog::info("wal: opened {} (id {}, last sequence {})", options.dir, id.ToString(), last_seq);
  return std::unique_ptr<Log>(new Log(options, std::move(db), std::move(handles), id, last_seq));
}

Log::Log(const Options& options, std::unique_ptr<rocksdb::DB> db,
         std::vector<rocksdb::ColumnFamilyHandle*> handles, common::Uuid id, uint64_t last_seq)
    : options_(options),
      db_(std::move(db)),
      handles_(std::move(handles)),
      id_(id),
      last_seq_(last_seq),
      committer_([this] { CommitLoop(); }) {}

Log::~Log() {
  Close();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

void Log::Close() {
  {
    std::lock_guard lock(mu_);
    if (closing_ && !committer_.joinable()) return;
    closing_ = true;
    accepting_.store(false, std::memory_order_relaxed);
  }
  pending_cv_.notify_all();
  appended_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

void Log::Append(std::string record, AppendCallback done) {
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      pending_bytes_ += record.size();
      pending_.push_back({std::move(record), std::move(done)});
      pending_cv_.notify_one();
      return;
    }
  }
  done(Error{ErrorCode::kUnavailable, "the WAL is shutting down", {}});
}

void Log::CommitLoop() {
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      pending_cv_.wait(lock, [&] { return closing_ || !pending_.empty(); });
      if (pending_.empty()) return;  // closing, and nothing left to commit
      // Take everything pending, up to the byte budget of one commit.
      size_t bytes = 0;
      size_t n = 0;
      while (n < pending_.size() &&
             (n == 0 || bytes + pending_[n].record.size() <= options_.max_commit_bytes)) {
        bytes += pending_[n].record.size();
        ++n;
      }
      group.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.begin() + static_cast<ptrdiff_t>(n)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
      pending_bytes_ -= bytes;
    }
    CommitGroup(group);
    group.clear();
  }
}

void Log::CommitGroup(std::vector<Pending>& group) {
  const uint64_t first = last_seq_.load(std::memory_order_relaxed) + 1;
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < group.size(); ++i) {
    batch.Put(handles_[0], SequenceKey(first + i), group[i].record);
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const auto status = db_->Write(wo, &batch);
  if (!status.ok()) {
    // Nothing of the group is acknowledged, and the sequence does not advance, so the log stays
    // gap-free whatever RocksDB kept.
    spdlog::error("wal: group commit of {} records failed: {}", group.size(), status.ToString());
    accepting_.store(false, std::memory_order_relaxed);
    const Error error{ErrorCode::kUnavailable, "the WAL cannot accept writes right now", {}};
    for (auto& p : group) p.done(error);
    return;
  }
  {
    std::lock_guard lock(mu_);
    last_seq_.store(first + group.size() - 1, std::memory_order_release);
  }
  appended_cv_.notify_all();
  accepting_.store(true, std::memory_order_relaxed);
  commits_.fetch_add(1, std::memory_order_relaxed);
  committed_records_.fetch_add(group.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < group.size(); ++i) group[i].done(first + i);
}

common::Result<std::vector<Entry>> Log::Read(uint64_t after, size_t max_records,
                                             size_t max_bytes) const {
  std::vector<Entry> out;
  if (max_records == 0) return out;
  const std::string lower = SequenceKey(after + 1);
  const std::string upper = SequenceKey(after + 1 + max_records);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[0]));
  size_t bytes = 0;
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    if (!out.empty() && bytes + it->value().size() > max_bytes) break;
    bytes += it->value().size();
    out.push_back({SequenceFromKey(it->key().ToStringView()), it->value().ToString()});
  }
  if (!it->status().ok()) return Unavailable("cannot read WAL", it->status());
  return out;
}

void Log::WaitForAppend(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  appended_cv_.wait_for(
      lock, timeout, [&] { return closing_ || last_seq_.load(std::memory_order_acquire) > after; });
}

}  // namespace xtrace::wal
