#pragma once
// The projection loop, once for the server and the replay tool: read the chunk after the
// stream's position from a Source → keep the records of the stream's kind → decode → prepare →
// fold them and move the position in one transaction of a Sink. Records the sink refuses as
// data are isolated by bisection and quarantined; a record that cannot be decoded, or a log that
// cannot be read, halts the stream at that record. What to do then (retry with backoff, or stop
// and report) is the caller's: the server's StreamProjector or xtrace-replay.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "projector/cursor.hpp"
#include "projector/sink.hpp"
#include "projector/source.hpp"

namespace xtrace::projector {

// Records are folded on one stream per kind: a backlog of metric points never waits behind trace
// records or the reverse, and the two kinds use two PostgreSQL backends at once. The kinds write
// disjoint tables, so their relative order does not matter; within a stream, records are applied
// in log order.
enum class Stream { kTraces, kMetrics };
inline constexpr Stream kStreams[] = {Stream::kTraces, Stream::kMetrics};
const char* StreamName(Stream stream);  // "traces" / "metrics": the cursor row's key

// The stream cannot go on for a reason that is not PostgreSQL's: a record this build cannot
// decode (usually one written by a newer build), or the log failed to read. Skipping would lose
// an acknowledged record for good, so the stream stops right before the record: the records
// before it in its chunk are folded first, so where a stream halts does not depend on how the
// log was cut into chunks (a replay halts with the projections the server has).
class Halted : public std::runtime_error {
 public:
  enum class Cause { kUndecodable, kUnreadable };
  Halted(uint64_t seq, Cause cause, const std::string& why)
      : std::runtime_error("projection halted at WAL record " + std::to_string(seq) + ": " + why),
        seq_(seq),
        cause_(cause) {}
  uint64_t seq() const { return seq_; }
  Cause cause() const { return cause_; }

 private:
  uint64_t seq_;
  Cause cause_;
};

struct LoopOptions {
  // Records folded per transaction at most. A chunk is whatever the source holds beyond the
  // position up to these limits, so its size adapts to the backlog: live traffic gives small,
  // prompt chunks; a backlog gives large ones, which amortize the per-statement and rollup-merge
  // costs.
  size_t chunk_records = 4096;
  // Bytes of records read per transaction at most: bounds memory whatever the backlog (decoded
  // records and statement arguments take several times this).
  size_t chunk_bytes = 8u << 20;
  // How far the stored position may lag behind a move over the other kind's records before it
  // is stored on its own (Cursor).
  uint64_t cursor_lag_records = 10000;
  std::chrono::milliseconds cursor_lag_interval{1000};
};

class StreamLoop {
 public:
  // The loop reads `source` and writes `sink`, which must outlive it. `moved` (may be empty) is
  // called on the loop's thread whenever position() changes.
  StreamLoop(const Source& source, Stream stream, Sink& sink, LoopOptions options,
             std::function<void(uint64_t position)> moved = {});
  ~StreamLoop();  // DropPrefetch()
  StreamLoop(const StreamLoop&) = delete;
  StreamLoop& operator=(const StreamLoop&) = delete;

  // Opens the sink and takes the position it stores. Throws what the sink throws.
  void Open();
  bool IsOpen() const { return sink_.IsOpen(); }
  // Forgets the chunk read ahead and the sink's connection: after CursorFenced or a failure of
  // the sink. Open() again to go on.
  void Close();

  // Folds the chunk after position(); false when the source had nothing new. Throws Halted (the
  // position right before the record: try again later, the connection stays), CursorFenced, and
  // whatever else the sink threw that is not the rows' fault (a lost connection: Close, then
  // Open). The next chunk is read and prepared on another thread meanwhile.
  bool Step();

  // Stores the position when the stored one lags behind it (moved over the other kind's records
  // in memory): when the source goes idle, and before stopping.
  void StoreCursor();

  // Waits for the chunk being read ahead, if any, and forgets it.
  void DropPrefetch();

  const char* name() const { return name_; }
  uint64_t position() const { return cursor_.position(); }
  // Records of this log and stream in quarantine: those there at Open() and those set aside since.
  uint64_t quarantined() const { return quarantined_; }

  // Since construction: records folded, their events, records quarantined.
  struct Counts {
    uint64_t records = 0;
    uint64_t events = 0;
    uint64_t quarantined = 0;
  };
  const Counts& counts() const { return counts_; }

 private:
  struct Loaded {
    Chunk chunk;                 // ends before the record the stream halts at, if any
    std::optional<Halted> halt;  // to throw once the chunk is folded
    double prepare_ms = 0;
  };
  Loaded Load(uint64_t after) const;  // no sink: runs beside the previous chunk's transaction
  // Decodes and prepares `chunk.records`. At a record that does not decode, the chunk is cut
  // before it and the Halted to throw is returned.
  std::optional<Halted> Prepare(Chunk& chunk) const;
  void StartLoad(uint64_t after);
  // Folds the chunk and moves the position to chunk.to, in one transaction.
  void Apply(Chunk& chunk, double prepare_ms);
  // Applies `records` up to `to`, isolating and quarantining the records the sink refuses.
  void Isolate(std::span<const wal::Entry> records, uint64_t to);
  void Quarantine(const wal::Entry& entry, const std::exception& error);
  void Moved();

  const Source& source_;
  const Stream stream_;
  const char* const name_;
  Sink& sink_;
  const LoopOptions options_;
  const std::function<void(uint64_t)> moved_;

  Cursor cursor_;
  std::future<Loaded> next_;  // the chunk after position(), being read and prepared
  uint64_t quarantined_ = 0;
  Counts counts_;
};

}  // namespace xtrace::projector
