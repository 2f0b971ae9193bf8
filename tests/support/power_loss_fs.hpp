#pragma once
// A RocksDB file system for crash tests that models what survives a power loss.
//
// A kill -9 loses nothing the process handed to the kernel: the page cache outlives the process,
// so a missing fsync goes unnoticed. A power loss keeps only what was made durable. PowerLossFs
// forwards every operation to RocksDB's default (POSIX) file system and records, per file, how
// many of its bytes are durable and, per directory, which names are durable. PowerOff() freezes
// that record: every later mutating call fails, as on a machine that is off. Once the database is
// closed, DropUnsyncedData() rewrites the real files to what the record says survived:
//   - A file keeps the bytes written before its last completed Sync or Fsync. RangeSync only
//     starts write-back (sync_file_range) and promises nothing, so it counts for nothing.
//   - A name created, replaced, renamed or deleted since its directory's last fsync reverts: a
//     new file vanishes, a renamed file is back under its old name and a file it replaced under
//     the new one, a deleted file reappears (with its durable bytes).
// Files that existed before the wrapper first touched them count as durable as they are.
//
// Simplifications, none of which RocksDB meets as the WAL configures it: directories themselves
// are not modelled (a test creates them beforehand); hard links, recycled files and random-write
// files are refused with NotSupported rather than modelled wrongly; opening an existing file for
// writing is modelled as replacing it (its old contents survive until the directory is fsync'd).
//
// No real fsync is issued: durability is modelled here, and skipping the disk keeps tests fast.

#include <rocksdb/file_system.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace xtrace::testing {

class PowerLossFs final : public rocksdb::FileSystemWrapper,
                          public std::enable_shared_from_this<PowerLossFs> {
 public:
  // stash_dir: an existing directory on the same file system as the data, outside any database
  // directory. It holds the contents a power loss would bring back (files replaced or deleted
  // since their directory was last fsync'd).
  explicit PowerLossFs(std::string stash_dir);
  const char* Name() const override { return "PowerLossFs"; }

  // The power goes off now: every mutating call from now on fails (an fsync under way does not
  // complete). Reads keep working so that the database can be closed.
  void PowerOff();
  // The power goes off just before the n-th mutating call from now (n >= 1), wherever in
  // RocksDB's write path or recovery that call is.
  void PowerOffAtCall(uint64_t n);
  bool powered_off() const;
  // Mutating calls so far (appends, syncs, creations, renames, deletions, directory fsyncs).
  uint64_t mutating_calls() const;

  // Requires the power to be off and every file written through this wrapper to be closed.
  // Rewrites the files to what survived, then powers on with that as the new durable state.
  rocksdb::IOStatus DropUnsyncedData();

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;

 private:
  class File;
  class Directory;

  // A file's contents, wherever its bytes currently live: under a name in a database directory,
  // or parked in the stash while only the durable state still refers to it.
  struct Node {
    std::string path;     // where its bytes are on the real file system
    uint64_t synced = 0;  // bytes that survive a power loss
  };
  using NodeId = uint64_t;

  // Counts one mutating call; false when the power is (or now goes) off. Holds mu_.
  bool PowerOnFor();
  // Starts tracking a name: a file found there counts as durable as it is. Holds mu_.
  void Track(const std::string& path);
  // Takes a node off its name. A node the durable state still names is parked in the stash (a
  // power loss brings it back); any other is removed. Holds mu_.
  void Unlink(NodeId id);
  bool IsDurable(NodeId id) const;  // holds mu_
  std::string StashPath(NodeId id) const;

  // Called by File and Directory.
  bool CountCall();
  rocksdb::IOStatus MarkSynced(NodeId id, uint64_t bytes);
  void ClampSynced(NodeId id, uint64_t bytes);
  rocksdb::IOStatus SyncDirectory(const std::string& dir);

  const std::string stash_dir_;
  mutable std::mutex mu_;
  std::map<NodeId, Node> nodes_;
  NodeId next_id_ = 1;
  // Every name touched since the last power-on, with the node it holds now and the node it holds
  // durably (nullopt: no file). Untouched names hold what the real directory shows, durably.
  std::map<std::string, std::optional<NodeId>> current_;
  std::map<std::string, std::optional<NodeId>> durable_;
  bool off_ = false;
  uint64_t calls_ = 0;
  uint64_t off_at_call_ = UINT64_MAX;
};

}  // namespace xtrace::testing
