#include "wal/reader.hpp"

#include <rocksdb/db.h>

#include <cstring>
#include <filesystem>

namespace xtrace::wal {

using common::Error;
using common::ErrorCode;

common::Result<std::unique_ptr<Reader>> Reader::Open(const std::string& dir) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    return Error{ErrorCode::kBadParameter, "no WAL in " + dir + " (no RocksDB CURRENT file)",
                 "wal-dir"};
  }
  rocksdb::DBOptions options;
  options.info_log_level = rocksdb::InfoLogLevel::ERROR_LEVEL;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                           {"meta", {}}};
  std::unique_ptr<Reader> reader(new Reader());
  reader->dir_ = dir;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(options, dir, families, &reader->handles_, &raw);
  if (!s.ok()) return Error{ErrorCode::kWalUnavailable, "cannot open WAL: " + s.ToString(), {}};
  reader->db_.reset(raw);
  std::string id;
  s = reader->db_->Get(rocksdb::ReadOptions(), reader->handles_[1], "wal_id", &id);
  if (s.ok() && id.size() == 16) std::memcpy(reader->id_.bytes.data(), id.data(), 16);
  std::unique_ptr<rocksdb::Iterator> it(
      reader->db_->NewIterator(rocksdb::ReadOptions(), reader->handles_[0]));
  it->SeekToFirst();
  if (it->Valid()) reader->first_seq_ = SequenceFromKey(it->key().ToStringView());
  it->SeekToLast();
  if (it->Valid()) reader->last_seq_ = SequenceFromKey(it->key().ToStringView());
  return reader;
}

Reader::~Reader() {
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

uint64_t Reader::DiskBytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

common::Result<std::vector<Entry>> Reader::Read(uint64_t after, size_t max_records,
                                                size_t max_bytes) const {
  std::vector<Entry> out;
  const std::string lower = SequenceKey(after + 1);
  rocksdb::Slice lower_slice(lower);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[0]));
  size_t bytes = 0;
  for (it->Seek(lower_slice); it->Valid() && out.size() < max_records; it->Next()) {
    if (!out.empty() && bytes + it->value().size() > max_bytes) break;
    bytes += it->value().size();
    out.push_back({SequenceFromKey(it->key().ToStringView()), it->value().ToString()});
  }
  if (!it->status().ok()) {
    return Error{ErrorCode::kWalUnavailable, "cannot read WAL: " + it->status().ToString(), {}};
  }
  return out;
}

}  // namespace xtrace::wal
