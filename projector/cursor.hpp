#pragma once
// A projection stream's position in the log, and where it is kept between transactions.
//
// The position moves in two ways: a transaction that folds records moves the stored position
// with the rows, fenced on its previous value (so rows and cursor move together or not at all,
// and two projectors on one log cannot both move it); records of the other stream's kind only
// move it in memory, and the stored position catches up later (Cursor::MayDefer).

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/uuid.hpp"

#include <pqxx/connection>
#include <pqxx/transaction_base>

namespace xtrace::projector {

// Someone else moved the stored position (another projector on the same log and stream).
class CursorFenced : public std::runtime_error {
 public:
  CursorFenced() : std::runtime_error("projector cursor moved underneath us") {}
};

// Where a stream's position survives the transaction.
class CursorStore {
 public:
  virtual ~CursorStore() = default;
  // The stored position, created at 0 when there is none yet.
  virtual uint64_t Load(pqxx::transaction_base& txn) = 0;
  // Moves the stored position from `from` to `to` within txn; throws CursorFenced when it is not
  // at `from`. The move counts only if txn commits.
  virtual void Advance(pqxx::transaction_base& txn, uint64_t from, uint64_t to) = 0;
};

// The server's position: the row (wal_id, stream) of projector_cursors.
class TableCursor final : public CursorStore {
 public:
  TableCursor(const common::Uuid& wal_id, std::string stream)
      : wal_id_(wal_id.ToString()), stream_(std::move(stream)) {}
  uint64_t Load(pqxx::transaction_base& txn) override;
  void Advance(pqxx::transaction_base& txn, uint64_t from, uint64_t to) override;

 private:
  const std::string wal_id_;
  const std::string stream_;
};

// A position that is not stored: a replay starts where it is told and never reads or writes
// the server's cursor. Nobody else can move it, so there is nothing to fence.
class ScratchCursor final : public CursorStore {
 public:
  explicit ScratchCursor(uint64_t start) : start_(start) {}
  uint64_t Load(pqxx::transaction_base&) override { return start_; }
  void Advance(pqxx::transaction_base&, uint64_t, uint64_t) override {}

 private:
  const uint64_t start_;
};

// The positions of one stream, kept by its loop: how far it has read (folded, or moved over),
// and where the stored position is, which lags only by records of the other kind.
class Cursor {
 public:
  using Clock = std::chrono::steady_clock;
  // The stored position may lag by up to `lag_records` records or `lag_interval` before a move
  // over the other kind's records is stored on its own: under mixed live traffic, storing it for
  // every such chunk would be a commit per chunk. Re-reading the records moved over after a
  // crash finds nothing to do.
  Cursor(uint64_t lag_records, std::chrono::milliseconds lag_interval)
      : lag_records_(lag_records), lag_interval_(lag_interval) {}

  uint64_t position() const { return position_; }
  uint64_t stored() const { return stored_; }
  bool lagging() const { return stored_ != position_; }

  // The stored position is `seq` (read from the store, or a transaction moving it committed).
  void Stored(uint64_t seq, Clock::time_point now);
  void MovedInMemory(uint64_t seq) { position_ = seq; }
  // Whether a move to `to` over records of the other kind only may stay in memory.
  bool MayDefer(uint64_t to, Clock::time_point now) const {
    return to - stored_ < lag_records_ && now - stored_at_ < lag_interval_;
  }

 private:
  const uint64_t lag_records_;
  const std::chrono::milliseconds lag_interval_;
  uint64_t position_ = 0;
  uint64_t stored_ = 0;
  Clock::time_point stored_at_{};
};

// Every stream's stored position for a WAL, read at start-up (before any stream runs) to tell the
// WAL where projection stands. `least` is what every stream has projected (0 when one has none
// yet), `furthest` the position of the stream furthest ahead.
struct StoredCursors {
  uint64_t least = 0;
  uint64_t furthest = 0;
};
StoredCursors LoadCursors(pqxx::connection& conn, const std::string& wal_id);

}  // namespace xtrace::projector
