#include "projector/cursor.hpp"

#include <pqxx/result>

namespace xtrace::projector {

uint64_t TableCursor::Load(pqxx::transaction_base& txn) {
  txn.exec_params(
      "INSERT INTO projector_cursors (wal_id, stream, seq) VALUES ($1::uuid, $2, 0) "
      "ON CONFLICT (wal_id, stream) DO NOTHING",
      wal_id_, stream_);
  return txn
      .exec_params1("SELECT seq FROM projector_cursors WHERE wal_id = $1::uuid AND stream = $2",
                    wal_id_, stream_)[0]
      .as<uint64_t>();
}

void TableCursor::Advance(pqxx::transaction_base& txn, uint64_t from, uint64_t to) {
  const auto result = txn.exec_params(
      "UPDATE projector_cursors SET seq = $1, updated_at = now() "
      "WHERE wal_id = $2::uuid AND stream = $3 AND seq = $4",
      to, wal_id_, stream_, from);
  if (result.affected_rows() != 1) throw CursorFenced();
}

void Cursor::Stored(uint64_t seq, Clock::time_point now) {
  position_ = stored_ = seq;
  stored_at_ = now;
}

}  // namespace xtrace::projector
