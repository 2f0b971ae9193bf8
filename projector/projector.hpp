#pragma once
// The projector: a thread per stream that runs the projection loop (stream.hpp) on the server's
// WAL with cursors stored in PostgreSQL, forever: it connects, folds, waits for new records, and
// retries what failed with backoff. A crash between commit and anything else is harmless: the
// cursor and the rows move together or not at all.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/sink.hpp"
#include "projector/source.hpp"
#include "projector/stream.hpp"
#include "wal/log.hpp"

namespace xtrace::projector {

struct Options {
  std::string database_url;
  // Each stream's session (statement timeout and the other limits, pg/session.hpp).
  pg::Session session = pg::SessionFor(pg::Role::kProjector);
  // The loop's chunk limits (LoopOptions in stream.hpp). 8 MiB keeps the server near 200 MB under
  // load; 16 MiB drains a backlog about 1.8x faster for ~280 MB.
  size_t chunk_records = LoopOptions{}.chunk_records;
  size_t chunk_bytes = LoopOptions{}.chunk_bytes;
  // Retry delay after a failure doubles from min_backoff up to max_backoff.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

struct StreamStatus {
  std::string name;
  uint64_t projected_seq = 0;  // last WAL sequence this stream durably folded or skipped
  uint64_t quarantined = 0;    // records of this stream set aside in projector_quarantine
  std::string halted;  // why the stream cannot go on (not PostgreSQL's fault); empty: it can
  // Passes the stream's loop has begun: each connects if needed, then folds the next chunk, or
  // waits for one, or fails and backs off. Tests wait on it to know the stream has tried again.
  uint64_t attempts = 0;
};

struct Status {
  uint64_t projected_seq = 0;        // least over the streams: everything up to it is projected
  bool database_up = false;          // every stream's last attempt to talk to PostgreSQL succeeded
  uint64_t quarantined_records = 0;  // records PostgreSQL rejected, in projector_quarantine
  std::vector<StreamStatus> streams;
};

class StreamProjector;

// Both streams on the server's log, each with its own thread, connection and cursor row.
class Projector {
 public:
  Projector(wal::Log& log, Options options);
  ~Projector();  // Stop()
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  void Start();
  // Finishes the transactions in flight (if any) and joins the threads. A call still waiting on
  // PostgreSQL at `abandon_at` is abandoned then (its transaction never commits; the records
  // are projected after the next start). Idempotent.
  void Stop(pg::Clock::time_point abandon_at = pg::Clock::time_point::max());

  Status status() const;

 private:
  friend class StreamProjector;
  void Publish();  // a stream's cursor moved: tell the WAL the least of them

  wal::Log& log_;
  LogSource source_;
  std::mutex publish_mu_;  // one stream at a time tells the WAL
  std::vector<std::unique_ptr<StreamProjector>> streams_;
};

// One stream, run for ever on a thread: the loop of stream.hpp, reconnecting with backoff after
// a failure of the sink, retrying with backoff while halted, and waiting on the source when it
// has nothing new.
class StreamProjector {
 public:
  // `moved` is called on the stream's thread whenever projected_seq() changes.
  StreamProjector(const Source& source, Stream stream, std::unique_ptr<Sink> sink, Options options,
                  std::function<void()> moved = {});
  ~StreamProjector();  // Stop()
  StreamProjector(const StreamProjector&) = delete;
  StreamProjector& operator=(const StreamProjector&) = delete;

  void Start();
  // Asks the thread to stop (see Projector::Stop) without waiting for it.
  void RequestStop(pg::Clock::time_point abandon_at);
  void Stop();

  uint64_t projected_seq() const { return projected_seq_.load(); }
  bool loaded() const { return loaded_.load(); }  // has read its stored cursor
  bool database_up() const { return database_up_.load(); }
  uint64_t quarantined() const { return quarantined_.load(); }
  std::string halted() const;  // empty unless the stream is halted (see Halted in stream.hpp)
  uint64_t attempts() const { return attempts_.load(); }  // see StreamStatus::attempts

 private:
  void Run();
  bool Connect();                      // false: failed; backoff and retry
  bool SetHalted(std::string reason);  // true when the reason changed
  void SleepFor(std::chrono::milliseconds d);

  const Source& source_;
  const std::unique_ptr<Sink> sink_;
  const Options options_;
  const std::function<void()> moved_;
  StreamLoop loop_;             // projector thread only
  bool reported_down_ = false;  // projector thread only

  std::atomic<uint64_t> projected_seq_{0};
  std::atomic<bool> loaded_{false};
  std::atomic<bool> database_up_{false};
  std::atomic<uint64_t> quarantined_{0};
  mutable std::mutex status_mu_;
  std::string halted_;  // guarded by status_mu_
  std::atomic<uint64_t> attempts_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace xtrace::projector
