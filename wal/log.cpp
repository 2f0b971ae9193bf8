#include "wal/log.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace xtrace::wal {
namespace {

using common::Error;
using common::ErrorCode;

constexpr char kMetaFamily[] = "meta";
constexpr char kWalIdKey[] = "wal_id";
constexpr char kTimeIndexPrefix[] = "t/";
// Trimming has minute resolution; checking every 50 maintenance ticks (10 s by default) is enough.
constexpr int kTrimEveryTicks = 50;

Error OpenError(const std::string& what, const rocksdb::Status& s) {
  return Error{ErrorCode::kWalUnavailable, what + ": " + s.ToString(), {}};
}

std::string TimeIndexKey(int64_t minute) {
  return kTimeIndexPrefix + SequenceKey(static_cast<uint64_t>(minute));
}

int64_t UnixMinute(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
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

namespace {

// RocksDB's own diagnostics go to the process log rather than to a LOG file beside the data: a
// full WAL disk must not also break logging (RocksDB asserts when its info log cannot write).
class RocksLogger : public rocksdb::Logger {
 public:
  RocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      spdlog::error("rocksdb: {}", buf);
    } else {
      spdlog::warn("rocksdb: {}", buf);
    }
  }
};

rocksdb::Env* EnvOf(const Options& options) {
  return options.env ? options.env.get() : rocksdb::Env::Default();
}

// Opens the RocksDB instance with both column families.
common::Result<std::unique_ptr<rocksdb::DB>> OpenDb(
    const Options& options, std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  const std::string& dir = options.dir;
  rocksdb::DBOptions db_options;
  db_options.env = EnvOf(options);
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // After a crash the RocksDB WAL may end in a torn write. Point-in-time recovery replays up to
  // the last intact entry and drops the rest: a torn entry was never fsync-acknowledged, while
  // kAbsoluteConsistency would refuse to open and kSkipAnyCorruptedRecords could skip a hole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = std::make_shared<RocksLogger>();
  rocksdb::ColumnFamilyOptions cf_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options}, {kMetaFamily, cf_options}};
  handles.clear();
  rocksdb::DB* raw = nullptr;
  auto status = rocksdb::DB::Open(db_options, dir, families, &handles, &raw);
  if (!status.ok()) return OpenError("cannot open WAL in " + dir, status);
  return std::unique_ptr<rocksdb::DB>(raw);
}

// The first and last sequence numbers present (first = last + 1 when empty).
std::pair<uint64_t, uint64_t> SequenceRange(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
  uint64_t first = 0, last = 0;
  it->SeekToLast();
  if (it->Valid()) last = SequenceFromKey(it->key().ToStringView());
  it->SeekToFirst();
  first = it->Valid() ? SequenceFromKey(it->key().ToStringView()) : last + 1;
  return {first, last};
}

}  // namespace

common::Result<std::unique_ptr<Log>> Log::Open(const Options& options) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto opened = OpenDb(options, handles);
  if (!opened) return opened.error();
  std::unique_ptr<rocksdb::DB> db = std::move(*opened);
  rocksdb::Status status;

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
    if (!status.ok()) return OpenError("cannot write WAL id", status);
  } else if (!status.ok() || id_bytes.size() != 16) {
    return OpenError("cannot read WAL id", status);
  } else {
    std::memcpy(id.bytes.data(), id_bytes.data(), 16);
  }

  const auto [first_seq, last_seq] = SequenceRange(*db, handles[0]);
  spdlog::info("wal: opened {} (id {}, sequences {}..{})", options.dir, id.ToString(), first_seq,
               last_seq);
  return std::unique_ptr<Log>(
      new Log(options, std::move(db), std::move(handles), id, first_seq, last_seq));
}

Log::Log(const Options& options, std::unique_ptr<rocksdb::DB> db,
         std::vector<rocksdb::ColumnFamilyHandle*> handles, common::Uuid id, uint64_t first_seq,
         uint64_t last_seq)
    : options_(options),
      db_(std::move(db)),
      handles_(std::move(handles)),
      id_(id),
      first_seq_(first_seq),
      last_seq_(last_seq),
      opened_last_seq_(last_seq) {
  RefreshCapacity();  // until the projector reports, the whole retained log counts as backlog
  committer_ = std::thread([this] { CommitLoop(); });
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

Log::~Log() {
  Close();
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

void Log::Close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  pending_cv_.notify_all();
  appended_cv_.notify_all();
  maintenance_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  if (maintenance_.joinable()) maintenance_.join();
}

std::optional<Error> Log::Refusal(size_t incoming_bytes) const {
  if (closing_) return Error{ErrorCode::kWalUnavailable, "the WAL is shutting down", {}};
  if (write_failed_.load()) {
    return Error{ErrorCode::kWalUnavailable, "the WAL cannot write right now; retry later", {}};
  }
  if (free_disk_bytes_.load() < options_.min_free_disk_bytes) {
    return Error{ErrorCode::kWalFull, "the disk holding the WAL is nearly full; retry later", {}};
  }
  const uint64_t backlog = BacklogBytes() + pending_bytes_;
  if (backlog >= options_.max_backlog_bytes ||
      backlog + incoming_bytes > options_.max_backlog_bytes) {
    return Error{ErrorCode::kWalFull,
                 "the WAL backlog is at its limit (XTRACE_WAL_MAX_BYTES); retry later",
                 {}};
  }
  return std::nullopt;
}

uint64_t Log::BacklogBytes() const {
  return opened_backlog_bytes_.load() + unprojected_.bytes();
}

size_t Log::ReadinessHeadroom() const {
  // Ready means a typical request still fits: 64 KiB, or 1/16 of a smaller cap.
  return static_cast<size_t>(std::min<uint64_t>(64 * 1024, options_.max_backlog_bytes / 16));
}

bool Log::AcceptingWrites() const {
  std::lock_guard lock(mu_);
  return !Refusal(ReadinessHeadroom()).has_value();
}

void Log::Append(std::string record, AppendCallback done) {
  std::optional<Error> refused;
  {
    std::lock_guard lock(mu_);
    refused = Refusal(record.size());
    if (!refused) {
      pending_bytes_ += record.size();
      pending_.push_back({std::move(record), std::move(done)});
      pending_cv_.notify_one();
      return;
    }
  }
  done(*refused);
}

void Log::CommitLoop() {
  std::vector<Pending> group;
  for (;;) {
    size_t bytes = 0;
    {
      std::unique_lock lock(mu_);
      pending_cv_.wait(lock, [&] { return closing_ || !pending_.empty(); });
      if (pending_.empty()) return;  // closing, and nothing left to commit
      // Take everything pending, up to the byte budget of one commit.
      size_t n = 0;
      while (n < pending_.size() &&
             (n == 0 || bytes + pending_[n].record.size() <= options_.max_commit_bytes)) {
        bytes += pending_[n].record.size();
        ++n;
      }
      group.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.begin() + static_cast<ptrdiff_t>(n)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
    }
    CommitGroup(group);
    {
      // Counted as pending until committed, so the backlog check never misses these bytes.
      std::lock_guard lock(mu_);
      pending_bytes_ -= bytes;
    }
    group.clear();
  }
}

void Log::CommitGroup(std::vector<Pending>& group) {
  std::shared_lock db_lock(db_mu_);
  if (!db_ || write_failed_.load()) {
    const Error error{
        ErrorCode::kWalUnavailable, "the WAL cannot write right now; retry later", {}};
    for (auto& p : group) p.done(error);
    return;
  }
  const uint64_t first =
      std::max(last_seq_.load(std::memory_order_relaxed) + 1, min_next_seq_.load());
  rocksdb::WriteBatch batch;
  size_t bytes = 0;
  for (size_t i = 0; i < group.size(); ++i) {
    batch.Put(handles_[0], SequenceKey(first + i), group[i].record);
    bytes += group[i].record.size();
  }
  const int64_t minute = UnixMinute(std::chrono::system_clock::now());
  if (minute != last_indexed_minute_) {
    batch.Put(handles_[1], TimeIndexKey(minute), SequenceKey(first));
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const auto status = db_->Write(wo, &batch);
  if (!status.ok()) {
    // Nothing of the group is acknowledged, and the sequence does not advance, so the log stays
    // gap-free whatever RocksDB kept. Appends are refused until the maintenance thread resumes.
    spdlog::error("wal: group commit of {} records failed: {}", group.size(), status.ToString());
    write_failed_ = true;
    const Error error{
        ErrorCode::kWalUnavailable, "the WAL cannot write right now; retry later", {}};
    for (auto& p : group) p.done(error);
    return;
  }
  last_indexed_minute_ = minute;
  {
    std::lock_guard lock(mu_);
    const uint64_t last = first + group.size() - 1;
    last_seq_.store(last, std::memory_order_release);
    if (last > projected_seq_.load()) unprojected_.Add(last, bytes);
  }
  appended_cv_.notify_all();
  commits_.fetch_add(1, std::memory_order_relaxed);
  committed_records_.fetch_add(group.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < group.size(); ++i) group[i].done(first + i);
}

void Log::SetProjected(uint64_t seq, uint64_t furthest) {
  furthest = std::max(furthest, seq);
  {
    std::lock_guard lock(mu_);
    projected_seq_.store(seq);
    unprojected_.Release(seq);
  }
  if (furthest > last_seq_.load() && furthest >= min_next_seq_.load()) {
    spdlog::error(
        "wal: projected sequence {} is beyond the log's last sequence {}: records were "
        "lost from the WAL; new records continue at {}",
        furthest, last_seq_.load(), furthest + 1);
    min_next_seq_.store(furthest + 1);
  }
}

void Log::MaintenanceLoop() {
  auto next_trim = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      maintenance_cv_.wait_for(lock, options_.maintenance_interval, [&] { return closing_; });
      if (closing_) return;
    }
    if (write_failed_.load()) Reopen();
    RefreshCapacity();
    if (std::chrono::steady_clock::now() >= next_trim) {
      Trim();
      trim_passes_++;
      next_trim =
          std::chrono::steady_clock::now() + kTrimEveryTicks * options_.maintenance_interval;
    }
  }
}

void Log::Reopen() {
  // After a failed write RocksDB must not be written to again through the same log file (its
  // writer is left in an error state), so the database is closed and opened afresh: recovery
  // replays the log up to the last intact entry, and writing continues in a new file. Fails
  // (and is retried on the next tick) while the disk is still full.
  std::unique_lock lock(db_mu_);
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
  handles_.clear();
  db_.reset();
  auto opened = OpenDb(options_, handles_);
  if (!opened) {
    spdlog::warn("wal: reopen after write failure failed: {}", opened.error().message);
    // Keep a usable handle for readers: a read-only instance needs no free space.
    rocksdb::DBOptions ro_options;
    ro_options.env = EnvOf(options_);
    ro_options.info_log = std::make_shared<RocksLogger>();
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {kMetaFamily, {}}};
    rocksdb::DB* raw = nullptr;
    if (rocksdb::DB::OpenForReadOnly(ro_options, options_.dir, families, &handles_, &raw).ok()) {
      db_.reset(raw);
    }
    return;
  }
  db_ = std::move(*opened);
  // A record whose write failed may still have reached the log intact; never reuse its number.
  const auto [first, last] = SequenceRange(*db_, handles_[0]);
  first_seq_ = first;
  if (last > last_seq_.load()) {
    spdlog::warn("wal: {} records of failed writes were kept by recovery", last - last_seq_.load());
    std::lock_guard mu_lock(mu_);
    last_seq_ = last;
  }
  last_indexed_minute_ = -1;
  write_failed_ = false;
  spdlog::info("wal: reopened after a write failure; accepting writes again");
}

void Log::RefreshCapacity() {
  struct statvfs fs {};
  if (statvfs(options_.dir.c_str(), &fs) == 0) {
    free_disk_bytes_ = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  // Only the records the log held when it opened are sized here; those appended since are
  // counted exactly in unprojected_.
  const uint64_t last = opened_last_seq_;
  const uint64_t from = std::max(projected_seq_.load(), first_seq_.load() - 1) + 1;
  uint64_t backlog = 0;
  std::shared_lock db_lock(db_mu_);
  if (last >= from && db_) {
    const std::string start = SequenceKey(from), limit = SequenceKey(last + 1);
    rocksdb::Range range(start, limit);
    rocksdb::SizeApproximationOptions approx;
    approx.include_memtables = true;
    approx.include_files = true;
    db_->GetApproximateSizes(approx, handles_[0], &range, 1, &backlog);
  }
  opened_backlog_bytes_ = backlog;

  uint64_t on_disk = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
    if (entry.is_regular_file(ec)) on_disk += entry.file_size(ec);
  }
  disk_bytes_ = on_disk;
}

void Log::Trim() {
  std::shared_lock db_lock(db_mu_);
  if (!db_ || write_failed_.load()) return;
  const uint64_t projected = projected_seq_.load();
  const uint64_t first = first_seq_.load();
  if (projected < first) return;
  const int64_t cutoff = UnixMinute(std::chrono::system_clock::now() - options_.retention);

  // The newest time-index entry at or before the cutoff: every record below its sequence was
  // appended before that minute began, so before the retention window.
  // Every record up to this snapshot has its minute in the index already (an entry is written
  // in the same batch as the first record of its minute).
  const uint64_t last = last_seq_.load();
  uint64_t trim_below = 0;
  std::vector<std::string> obsolete_index;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[1]));
    std::string previous;
    int64_t previous_minute = 0;
    bool newer_entry_exists = false;
    for (it->Seek(kTimeIndexPrefix); it->Valid() && it->key().starts_with(kTimeIndexPrefix);
         it->Next()) {
      const auto minute = static_cast<int64_t>(SequenceFromKey(it->key().ToStringView().substr(2)));
      if (minute > cutoff) {
        newer_entry_exists = true;
        break;
      }
      if (!previous.empty()) obsolete_index.push_back(previous);
      previous = it->key().ToString();
      previous_minute = minute;
      trim_below = SequenceFromKey(it->value().ToStringView());
    }
    // The newest minute itself has ended before the cutoff: everything appended so far is old.
    if (!previous.empty() && !newer_entry_exists && previous_minute + 1 <= cutoff) {
      trim_below = last + 1;
    }
  }
  const uint64_t trim_to = std::min(trim_below == 0 ? 0 : trim_below - 1, projected);
  if (trim_to < first) return;

  rocksdb::WriteBatch batch;
  const std::string begin = SequenceKey(first), end = SequenceKey(trim_to + 1);
  batch.DeleteRange(handles_[0], begin, end);
  for (const auto& key : obsolete_index) batch.Delete(handles_[1], key);
  // No fsync needed: a trim lost in a crash is simply done again.
  const auto s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    spdlog::warn("wal: trim failed: {}", s.ToString());
    return;
  }
  first_seq_ = trim_to + 1;
  trimmed_records_ += trim_to + 1 - first;
  spdlog::info("wal: trimmed sequences {}..{} (projected and older than retention)", first,
               trim_to);
  const rocksdb::Slice b(begin), e(end);
  db_->CompactRange(rocksdb::CompactRangeOptions(), handles_[0], &b, &e);
}

Stats Log::GetStats() const {
  Stats s;
  s.last_seq = last_seq_.load();
  s.first_seq = s.last_seq == 0 ? 0 : first_seq_.load();
  s.projected_seq = projected_seq_.load();
  s.disk_bytes = disk_bytes_.load();
  s.free_disk_bytes = free_disk_bytes_.load();
  {
    std::lock_guard lock(mu_);
    s.backlog_bytes = BacklogBytes();
    const auto refusal = Refusal(ReadinessHeadroom());
    s.accepting_writes = !refusal.has_value();
    if (refusal) s.refusal = refusal->message;
  }
  s.commits = commits_.load();
  s.committed_records = committed_records_.load();
  s.trimmed_records = trimmed_records_.load();
  s.trim_passes = trim_passes_.load();
  return s;
}

common::Result<std::vector<Entry>> Log::Read(uint64_t after, size_t max_records,
                                             size_t max_bytes) const {
  std::vector<Entry> out;
  if (max_records == 0) return out;
  std::shared_lock db_lock(db_mu_);
  if (!db_) return Error{ErrorCode::kWalUnavailable, "the WAL is being reopened", {}};
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
  if (!it->status().ok()) {
    return Error{ErrorCode::kWalUnavailable, "cannot read WAL: " + it->status().ToString(), {}};
  }
  return out;
}

void Log::WaitForAppend(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  appended_cv_.wait_for(
      lock, timeout, [&] { return closing_ || last_seq_.load(std::memory_order_acquire) > after; });
}

}  // namespace xtrace::wal
