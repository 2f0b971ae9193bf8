#pragma once
// Where a projection stream writes: the transactions the projection loop commits, and nothing
// else. PgSink (pg_sink.hpp) is PostgreSQL; unit tests of the loop use a fake.

#include <cstdint>
#include <exception>
#include <vector>

#include "pg/watchdog.hpp"
#include "projector/fold.hpp"
#include "wal/log.hpp"

namespace xtrace::projector {

// The records of one stream's kind in a range (after, to] of the log, prepared for folding.
// records is empty when the range held only the other kind's records.
struct Chunk {
  uint64_t after = 0;
  uint64_t to = 0;
  std::vector<wal::Entry> records;
  PreparedChunkPtr prepared;  // made from `records`
  uint64_t events = 0;        // traces, observations and metric points in `records`
};

class Sink {
 public:
  virtual ~Sink() = default;

  struct Opened {
    uint64_t cursor = 0;       // the stored position
    uint64_t quarantined = 0;  // records of this log and stream already set aside
  };
  // Connects (or whatever the sink needs before writing) and reads the stored position.
  virtual Opened Open() = 0;
  virtual bool IsOpen() const = 0;
  // Forgets the connection; the next Open makes a new one.
  virtual void Close() = 0;

  // One transaction: folds chunk.prepared and moves the stored position from `from` to
  // chunk.to (fenced: CursorFenced when it is not at `from`). Nothing of it stays on a throw.
  virtual void Fold(Chunk& chunk, uint64_t from) = 0;
  // One transaction: sets `entry` aside with the error that refused it and moves the stored
  // position from `from` to entry.seq.
  virtual void Quarantine(const wal::Entry& entry, const std::exception& error, uint64_t from) = 0;

  // Calls still waiting on the sink at `when` are abandoned then (shutdown). Any thread.
  virtual void AbandonAt(pg::Clock::time_point when) = 0;
};

}  // namespace xtrace::projector
