#include "support/power_loss_fs.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <system_error>

namespace xtrace::testing {
namespace {

namespace fs = std::filesystem;
using rocksdb::IOStatus;

IOStatus PowerLost() {
  return IOStatus::IOError("simulated power loss");
}

// One spelling per name, so that "dir//f", "dir/./f" and "dir/f" are the same entry and a
// directory fsync finds its entries whichever way RocksDB spelled them.
std::string Normal(const std::string& path) {
  std::string p = fs::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string ParentOf(const std::string& normal_path) {
  return fs::path(normal_path).parent_path().string();
}

IOStatus FromError(const std::string& what, const std::error_code& ec) {
  return IOStatus::IOError(what, ec.message());
}

}  // namespace

// A file open for writing. It counts the bytes handed to the real file; a completed Sync or Fsync
// makes that many durable (RocksDB appends sequentially, and the POSIX file writes through to the
// page cache at once, so every counted byte is in the real file).
class PowerLossFs::File final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(std::unique_ptr<rocksdb::FSWritableFile> target, std::shared_ptr<PowerLossFs> fs, NodeId id,
       uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(std::move(fs)), id_(id), size_(size) {}

  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                  rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    auto s = FSWritableFileOwnerWrapper::Append(data, options, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                  const rocksdb::DataVerificationInfo& info,
                  rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    auto s = FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                            const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    auto s = FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
    if (s.ok()) Grow(offset + data.size());
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                            const rocksdb::IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    auto s = FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) Grow(offset + data.size());
    return s;
  }
  IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                    rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    auto s = FSWritableFileOwnerWrapper::Truncate(size, options, dbg);
    // Bytes cut off are not durable any more (whether the cut itself is durable does not
    // matter: they are never read again).
    if (s.ok()) {
      size_ = size;
      fs_->ClampSynced(id_, size);
    }
    return s;
  }
  IOStatus Flush(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (!fs_->CountCall()) return PowerLost();
    return FSWritableFileOwnerWrapper::Flush(options, dbg);
  }
  IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return SyncData(options, dbg);
  }
  IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return SyncData(options, dbg);
  }
  IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                     rocksdb::IODebugContext*) override {
    // Starts write-back without waiting for it or for the disk's cache: nothing becomes durable.
    return fs_->CountCall() ? IOStatus::OK() : PowerLost();
  }
  // Counting is atomic and the durable mark is taken under the file system's lock.
  bool IsSyncThreadSafe() const override { return true; }
  // Close releases the descriptor; it writes nothing a power loss could keep or lose.

 private:
  IOStatus SyncData(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) {
    // Bytes appended while this sync runs may or may not be covered; count only those before.
    const uint64_t covered = size_.load();
    auto s = FSWritableFileOwnerWrapper::Flush(options, dbg);
    if (!s.ok()) return s;
    return fs_->MarkSynced(id_, covered);
  }
  void Grow(uint64_t end) {
    uint64_t seen = size_.load();
    while (seen < end && !size_.compare_exchange_weak(seen, end)) {
    }
  }

  const std::shared_ptr<PowerLossFs> fs_;
  const NodeId id_;
  std::atomic<uint64_t> size_;
};

// A directory handle: its fsync makes every entry change below it durable.
class PowerLossFs::Directory final : public rocksdb::FSDirectoryWrapper {
 public:
  Directory(std::unique_ptr<rocksdb::FSDirectory> target, std::shared_ptr<PowerLossFs> fs,
            std::string path)
      : FSDirectoryWrapper(std::move(target)), fs_(std::move(fs)), path_(std::move(path)) {}

  IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return fs_->SyncDirectory(path_);
  }
  // RocksDB passes a reason (a file was renamed, deleted, ...) that lets some file systems skip
  // the directory fsync; the model follows POSIX and treats every reason as a directory fsync.
  IOStatus FsyncWithDirOptions(const rocksdb::IOOptions&, rocksdb::IODebugContext*,
                               const rocksdb::DirFsyncOptions&) override {
    return fs_->SyncDirectory(path_);
  }

 private:
  const std::shared_ptr<PowerLossFs> fs_;
  const std::string path_;
};

PowerLossFs::PowerLossFs(std::string stash_dir)
    : FileSystemWrapper(rocksdb::FileSystem::Default()), stash_dir_(Normal(stash_dir)) {}

void PowerLossFs::PowerOff() {
  std::lock_guard lock(mu_);
  off_ = true;
}

void PowerLossFs::PowerOffAtCall(uint64_t n) {
  std::lock_guard lock(mu_);
  off_at_call_ = calls_ + std::max<uint64_t>(n, 1);
}

bool PowerLossFs::powered_off() const {
  std::lock_guard lock(mu_);
  return off_;
}

uint64_t PowerLossFs::mutating_calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

bool PowerLossFs::PowerOnFor() {
  if (off_) return false;
  if (++calls_ >= off_at_call_) off_ = true;
  return !off_;
}

bool PowerLossFs::CountCall() {
  std::lock_guard lock(mu_);
  return PowerOnFor();
}

std::string PowerLossFs::StashPath(NodeId id) const {
  return stash_dir_ + "/" + std::to_string(id);
}

void PowerLossFs::Track(const std::string& path) {
  if (current_.count(path)) return;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    current_[path] = durable_[path] = std::nullopt;
    return;
  }
  const NodeId id = next_id_++;
  nodes_[id] = Node{path, size};
  current_[path] = durable_[path] = id;
}

bool PowerLossFs::IsDurable(NodeId id) const {
  return std::any_of(durable_.begin(), durable_.end(),
                     [&](const auto& entry) { return entry.second == id; });
}

void PowerLossFs::Unlink(NodeId id) {
  auto& node = nodes_.at(id);
  std::error_code ec;
  if (IsDurable(id)) {
    fs::rename(node.path, StashPath(id), ec);
    node.path = StashPath(id);
  } else {
    fs::remove(node.path, ec);
    nodes_.erase(id);
  }
}

rocksdb::IOStatus PowerLossFs::MarkSynced(NodeId id, uint64_t bytes) {
  std::lock_guard lock(mu_);
  // A sync still under way when the power went off never completed.
  if (!PowerOnFor()) return PowerLost();
  if (auto it = nodes_.find(id); it != nodes_.end()) {
    it->second.synced = std::max(it->second.synced, bytes);
  }
  return IOStatus::OK();
}

void PowerLossFs::ClampSynced(NodeId id, uint64_t bytes) {
  std::lock_guard lock(mu_);
  if (auto it = nodes_.find(id); it != nodes_.end()) {
    it->second.synced = std::min(it->second.synced, bytes);
  }
}

rocksdb::IOStatus PowerLossFs::SyncDirectory(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  for (const auto& [path, node] : current_) {
    if (ParentOf(path) == dir) durable_[path] = node;
  }
  // Contents parked for a power loss that no durable name refers to any more are gone for good.
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.path == StashPath(it->first) && !IsDurable(it->first)) {
      std::error_code ec;
      fs::remove(it->second.path, ec);
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return IOStatus::OK();
}

rocksdb::IOStatus PowerLossFs::NewWritableFile(const std::string& fname,
                                               const rocksdb::FileOptions& options,
                                               std::unique_ptr<rocksdb::FSWritableFile>* result,
                                               rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  const std::string path = Normal(fname);
  Track(path);
  if (const auto old = current_[path]) Unlink(*old);
  current_[path] = std::nullopt;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto s = target_->NewWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  const NodeId id = next_id_++;
  nodes_[id] = Node{path, 0};
  current_[path] = id;
  *result = std::make_unique<File>(std::move(file), shared_from_this(), id, 0);
  return s;
}

rocksdb::IOStatus PowerLossFs::ReopenWritableFile(const std::string& fname,
                                                  const rocksdb::FileOptions& options,
                                                  std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                  rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  const std::string path = Normal(fname);
  Track(path);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto s = target_->ReopenWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  // Appending to a file that exists keeps its durable bytes; a missing one is created empty.
  NodeId id;
  if (const auto existing = current_[path]) {
    id = *existing;
  } else {
    id = next_id_++;
    nodes_[id] = Node{path, 0};
    current_[path] = id;
  }
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  *result = std::make_unique<File>(std::move(file), shared_from_this(), id, ec ? 0 : size);
  return s;
}

rocksdb::IOStatus PowerLossFs::ReuseWritableFile(const std::string&, const std::string&,
                                                 const rocksdb::FileOptions&,
                                                 std::unique_ptr<rocksdb::FSWritableFile>*,
                                                 rocksdb::IODebugContext*) {
  return IOStatus::NotSupported("PowerLossFs does not model recycled files");
}

rocksdb::IOStatus PowerLossFs::NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                               std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                               rocksdb::IODebugContext*) {
  return IOStatus::NotSupported("PowerLossFs does not model random-write files");
}

rocksdb::IOStatus PowerLossFs::LinkFile(const std::string&, const std::string&,
                                        const rocksdb::IOOptions&, rocksdb::IODebugContext*) {
  return IOStatus::NotSupported("PowerLossFs does not model hard links");
}

rocksdb::IOStatus PowerLossFs::NewDirectory(const std::string& name,
                                            const rocksdb::IOOptions& options,
                                            std::unique_ptr<rocksdb::FSDirectory>* result,
                                            rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  auto s = target_->NewDirectory(name, options, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<Directory>(std::move(dir), shared_from_this(), Normal(name));
  return s;
}

rocksdb::IOStatus PowerLossFs::RenameFile(const std::string& src, const std::string& target,
                                          const rocksdb::IOOptions& options,
                                          rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  const std::string from = Normal(src), to = Normal(target);
  Track(from);
  Track(to);
  const auto moving = current_[from];
  if (!moving) return target_->RenameFile(src, target, options, dbg);  // reports the error
  if (from == to) return IOStatus::OK();
  // The file the rename replaces is unlinked first, so that its contents can be kept for a
  // power loss that undoes the rename.
  if (const auto replaced = current_[to]) Unlink(*replaced);
  current_[to] = std::nullopt;
  auto s = target_->RenameFile(src, target, options, dbg);
  if (!s.ok()) return s;
  nodes_.at(*moving).path = to;
  current_[to] = moving;
  current_[from] = std::nullopt;
  return s;
}

rocksdb::IOStatus PowerLossFs::DeleteFile(const std::string& fname,
                                          const rocksdb::IOOptions& options,
                                          rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  const std::string path = Normal(fname);
  Track(path);
  const auto node = current_[path];
  if (!node) return target_->DeleteFile(fname, options, dbg);  // reports the error
  Unlink(*node);
  current_[path] = std::nullopt;
  return IOStatus::OK();
}

rocksdb::IOStatus PowerLossFs::Truncate(const std::string& fname, size_t size,
                                        const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (!PowerOnFor()) return PowerLost();
  const std::string path = Normal(fname);
  Track(path);
  auto s = target_->Truncate(fname, size, options, dbg);
  if (s.ok() && current_[path]) {
    auto& node = nodes_.at(*current_[path]);
    node.synced = std::min<uint64_t>(node.synced, size);
  }
  return s;
}

rocksdb::IOStatus PowerLossFs::CreateDir(const std::string& dirname,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  if (!CountCall()) return PowerLost();
  return target_->CreateDir(dirname, options, dbg);
}

rocksdb::IOStatus PowerLossFs::CreateDirIfMissing(const std::string& dirname,
                                                  const rocksdb::IOOptions& options,
                                                  rocksdb::IODebugContext* dbg) {
  if (!CountCall()) return PowerLost();
  return target_->CreateDirIfMissing(dirname, options, dbg);
}

rocksdb::IOStatus PowerLossFs::DeleteDir(const std::string& dirname,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  if (!CountCall()) return PowerLost();
  return target_->DeleteDir(dirname, options, dbg);
}

rocksdb::IOStatus PowerLossFs::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  if (!off_) return IOStatus::InvalidArgument("DropUnsyncedData needs the power off");
  std::error_code ec;
  // 1. Park the contents of every durable name in the stash, so that step 2 can clear the names
  //    and step 3 can put each back wherever it belongs (a rename may have swapped them).
  std::set<NodeId> survivors;
  for (const auto& [path, node] : durable_) {
    if (node) survivors.insert(*node);
  }
  for (const NodeId id : survivors) {
    auto& node = nodes_.at(id);
    if (node.path == StashPath(id)) continue;
    fs::rename(node.path, StashPath(id), ec);
    if (ec) return FromError("cannot park " + node.path, ec);
    node.path = StashPath(id);
  }
  // 2. Whatever else holds a tracked name was not durable.
  for (const auto& [path, node] : current_) {
    fs::remove(path, ec);
    if (ec) return FromError("cannot remove " + path, ec);
  }
  // 3. Every durable name gets its contents back, cut to the bytes that were synced. A node that
  //    two durable names share (renamed across directories, both fsync'd) is copied.
  for (const auto& [path, id] : durable_) {
    if (!id) continue;
    auto& node = nodes_.at(*id);
    if (node.path == StashPath(*id)) {
      fs::rename(node.path, path, ec);
      if (ec) return FromError("cannot restore " + path, ec);
      node.path = path;
      const uint64_t size = fs::file_size(path, ec);
      if (!ec && size > node.synced) fs::resize_file(path, node.synced, ec);
      if (ec) return FromError("cannot truncate " + path, ec);
    } else {
      fs::copy_file(node.path, path, ec);
      if (ec) return FromError("cannot copy " + node.path, ec);
    }
  }
  // 4. What is left in the stash was durable nowhere.
  for (const auto& entry : fs::directory_iterator(stash_dir_, ec)) fs::remove_all(entry.path(), ec);
  // The surviving files are the new durable state: what is on disk now counts as durable.
  nodes_.clear();
  current_.clear();
  durable_.clear();
  off_ = false;
  off_at_call_ = UINT64_MAX;
  return IOStatus::OK();
}

}  // namespace xtrace::testing
